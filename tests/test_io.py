"""Atomic writes: a file appears complete under its final name, or not at all."""

import os
import stat

import pytest

from scdrbench.common.io import atomic_path, write_text


def test_atomic_write_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "sub" / "table.tsv"
        write_text("a\tb\n", out)
        assert out.read_text() == "a\tb\n"
        assert stat.S_IMODE(out.stat().st_mode) == 0o644  # not mkstemp's 0600
    finally:
        os.umask(old)


def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "result.txt"
    write_text("complete\n", out)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(out) as tmp:
            with open(tmp, "w") as fh:
                fh.write("half")
            raise RuntimeError("boom")
    assert out.read_text() == "complete\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]
