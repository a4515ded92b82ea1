"""Errors of the machine, not of the inputs, through a real job command (``python -m
scdrbench.stages.embed``, the supervisor and its child): a real full file system (a small tmpfs, as root,
in a mount namespace; /dev/full anywhere), a read-only mount (root) or directory (not root),
the real open-file limit. Each is one ``scdrbench error:`` line naming the path and the
system's message, never "a bug", with nothing half-written left."""

from __future__ import annotations

import errno
import json
import os
import resource
import shlex
import subprocess
import sys

import pytest

from scdrbench.common import keep
from scdrbench.common.budget import Budget
from scdrbench.common.errors import EXIT_ENVIRONMENT, DamagedInputError, os_error_message
from scdrbench.common.supervise import supervise
from tests.conftest import ROOT, can_in_mount_namespace, make_blobs, write_pca_file

ENTRY = {
    "algorithm": "random",
    "control": "negative",
    "family": "python",
    "input": "pca",
    "label": "Random (control)",
    "params": {},
    "reference": "control",
}


def _can_mount() -> bool:
    return can_in_mount_namespace("mount -t tmpfs -o size=64k tmpfs /mnt")


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces")


@pytest.fixture
def pca(tmp_path):
    X, y = make_blobs(n_per=200)
    return write_pca_file(tmp_path / "data" / "pca.h5ad", X, y, n_significant_pcs=10, n_genes=50)


def embed_command(pca, output, log) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scdrbench.stages.embed",
        *("--input", str(pca), "--output", str(output), "--log", str(log)),
        *("--dataset", "blobs", "--method", "random", "--entry", json.dumps(ENTRY)),
    ]


def run_in_namespace(setup: str, cmd: list[str], after: str = "") -> subprocess.CompletedProcess:
    """Run ``cmd`` after the shell commands ``setup``, then ``after``, in a mount namespace of
    its own (its mounts end with it); the exit status is ``cmd``'s."""
    script = f"{setup} && {' '.join(shlex.quote(c) for c in cmd)}; rc=$?; {after} exit $rc"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True
    )


def assert_one_line(stderr: str, *expected: str) -> str:
    """Exactly one scdrbench line holds the error, with every ``expected`` part; no traceback,
    no logging error, no "bug"."""
    lines = [x for x in stderr.splitlines() if x.startswith("scdrbench")]
    assert len(lines) == 1, stderr
    for part in expected:
        assert part in lines[0], lines[0]
    for noise in ("Traceback", "--- Logging error ---", "a bug", "scdrbench warning"):
        assert noise not in stderr, stderr
    return lines[0]


@needs_mount
def test_a_full_file_system_is_one_line_and_leaves_nothing(pca, tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    log = tmp_path / "logs" / "random.log"
    # the tmpfs is full; the log lies on another file system
    setup = f"mount -t tmpfs -o size=256k tmpfs {out} && (dd if=/dev/zero of={out}/filler bs=4k 2>/dev/null; true)"
    # what is left is listed inside the namespace, before the tmpfs goes
    proc = run_in_namespace(setup, embed_command(pca, out / "random.h5ad", log), f"ls -a {out};")
    assert proc.returncode == EXIT_ENVIRONMENT, proc.stderr
    line = assert_one_line(
        proc.stderr,
        "scdrbench error: blobs/random: ",
        f"cannot write {out}/random.h5ad: No space left on device (ENOSPC)",
        "; nothing written",
        f"(log: {log})",
    )
    assert line.count("No space left on device") == 1
    text = log.read_text()
    assert text.count("No space left on device") == 1
    assert "a bug" not in text and "Traceback" not in text
    assert sorted(proc.stdout.split()) == [".", "..", "filler"]  # nothing half-written


def test_a_log_on_a_full_device_is_said_on_the_console_not_as_a_logging_error(pca, tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does (any user)."""
    ok = subprocess.run(
        embed_command(pca, tmp_path / "random.h5ad", "/dev/full"),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "Logging error" not in ok.stderr and "Traceback" not in ok.stderr
    assert (tmp_path / "random.h5ad").stat().st_size > 0
    bad = subprocess.run(
        embed_command(tmp_path / "missing.h5ad", tmp_path / "other.h5ad", "/dev/full"),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == DamagedInputError.exit_code
    assert_one_line(
        bad.stderr,
        "missing.h5ad does not exist",
        "(log: /dev/full could not be written: No space left on device)",
    )
    assert not (tmp_path / "other.h5ad").exists()
    # the supervisor alone: a log it cannot write never stops it
    code = "import sys; print('x' * 100, file=sys.stderr)"
    out = supervise([sys.executable, "-c", code], budget=Budget(), log_path="/dev/full")
    assert out.status == "ok" and out.stderr_tail == ["x" * 100]


def test_a_read_only_output_folder_is_one_line(pca, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    log = tmp_path / "logs" / "random.log"
    cmd = embed_command(pca, out / "random.h5ad", log)
    if os.geteuid() == 0:
        if not _can_mount():
            pytest.skip("root without mount namespaces: the directory's mode does not stop root")
        setup = f"mount --bind {out} {out} && mount -o remount,bind,ro {out}"
        proc = run_in_namespace(setup, cmd, f"ls -A {out};")
        expected = f"cannot write {out}/random.h5ad: Read-only file system (EROFS)"
    else:
        out.chmod(0o555)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        out.chmod(0o755)
        expected = f"cannot write {out}/random.h5ad: Permission denied (EACCES)"
    assert proc.returncode == EXIT_ENVIRONMENT, proc.stderr
    assert_one_line(proc.stderr, expected, f"(log: {log})")
    # nothing half-written (as root, listed inside the namespace)
    assert proc.stdout == "" and list(out.iterdir()) == []


def test_too_many_open_files_is_named_as_such():
    """A real EMFILE from the kernel under a lowered open-file limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    handles = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        with pytest.raises(OSError) as caught:
            for _ in range(100):
                handles.append(open(os.devnull))  # noqa: SIM115 - closed below
    finally:
        for fh in handles:
            fh.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert caught.value.errno == errno.EMFILE
    message = os_error_message(caught.value, "results/x.h5ad", "open")
    assert message.startswith("cannot open results/x.h5ad: Too many open files (EMFILE)")
    assert "ulimit -n" in message
    assert os_error_message(FileNotFoundError(errno.ENOENT, "gone", "x")) is None  # not ours


def test_a_retry_note_changes_the_token_once_and_a_success_keeps_it(tmp_path):
    out = tmp_path / "x.tsv"
    out.write_text("a\n")
    keep.record([out], [], "ok")
    assert keep.retry_token(out) == ""
    assert keep.note_retry([out], "error") is None
    token = keep.retry_token(out)
    assert token.startswith("error at ")
    keep.record([out], [], "ok")  # the retried run succeeded: the same token, nothing more runs
    assert keep.retry_token(out) == token
    keep.note_retry([out], "interrupted")
    assert keep.retry_token(out) not in ("", token)
    assert keep.note_retry([tmp_path / "missing.tsv"], "error") is None
    assert not keep.state_path(tmp_path / "missing.tsv").exists()


@needs_mount
def test_the_retry_note_is_written_in_place_on_a_full_disk(tmp_path):
    """The state file's block holds the note even when no new block can be had."""
    where = tmp_path / "disk"
    where.mkdir()
    code = (
        f"import subprocess, sys; from pathlib import Path; "
        f"from scdrbench.common import keep; out = Path({str(where)!r}) / 'x.tsv'; "
        "out.write_text('a'); keep.record([out], [], 'ok'); "
        f"subprocess.run('dd if=/dev/zero of={where}/filler bs=4k 2>/dev/null', shell=True); "
        "print(keep.note_retry([out], 'error')); print(keep.retry_token(out))"
    )
    setup = f"mount -t tmpfs -o size=64k tmpfs {where}"
    proc = run_in_namespace(setup, [sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    note, token = proc.stdout.split("\n")[:2]
    assert note == "None" and token.startswith("error at "), proc.stdout


@needs_mount
def test_the_log_keeps_its_whole_message_when_the_disk_fills_meanwhile(tmp_path):
    """Space is reserved for the log when it is opened: a disk filled afterwards (another job,
    another user) does not cut its last lines at a block boundary."""
    where = tmp_path / "disk"
    where.mkdir()
    code = (
        f"import logging, subprocess, sys; "
        "from scdrbench.common import runtime; "
        f"runtime.setup_logging({str(where / 'job.log')!r}); "
        f"subprocess.run('dd if=/dev/zero of={where}/filler bs=4k 2>/dev/null', shell=True); "
        "logging.getLogger('scdrbench').info('x' * 20000 + ' end'); "
        "print(runtime.LOG_FAILED)"
    )
    after = f"tail -c 5 {where}/job.log; wc -c < {where}/job.log;"
    proc = run_in_namespace(
        f"mount -t tmpfs -o size=256k tmpfs {where}", [sys.executable, "-c", code], after
    )
    assert proc.returncode == 0, proc.stderr
    failed, tail, size = proc.stdout.split("\n")[:3]
    assert failed == "None" and tail == " end" and int(size) > 20000, proc.stdout
