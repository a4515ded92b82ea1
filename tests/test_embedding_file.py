"""The embedding file contract has one owner (src/scdrbench/common/embedding_file.py): every reader
works on a good file and turns a damaged one into one line naming the file and the fix."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scdrbench.common import embedding_file as ef
from scdrbench.common.errors import ScdrbenchError


@pytest.fixture
def good(tmp_path):
    data = ad.AnnData(obs=pd.DataFrame({"label": list("aabbc")}, index=[f"c{i}" for i in range(5)]))
    uns = {
        "dataset_id": "d",
        "method_id": "m",
        "status": "ok",
        "status_message": "ok",
        "budget": "60s/-",
        "retry_token": "",
        "fit_seconds_repeats": np.array([1.5]),
        "peak_rss_mb_repeats": np.array([100.0]),
        "fit_cpu_seconds_repeats": np.array([2.5]),
    }
    path = tmp_path / "m.h5ad"
    ef.write(data, np.arange(10, dtype=float).reshape(5, 2), uns, path)
    return path


def _damage(path, how):
    if how == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 3])
    elif how == "not-hdf5":
        path.write_text("hello\n")
    else:
        path.unlink()


READERS = {
    "read": lambda p: ef.read(p).obsm["X_emb"].shape,
    "read_meta": lambda p: ef.read_meta(p)["n_cells"],
    "read_coordinates": lambda p: ef.read_coordinates(p, ("method_id",))[1].shape,
}
GOOD = {"read": (5, 2), "read_meta": 5, "read_coordinates": (5, 2)}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("how", ["truncated", "not-hdf5", "missing"])
def test_readers_name_the_file_and_the_command(good, reader, how):
    assert READERS[reader](good) == GOOD[reader]
    _damage(good, how)
    with pytest.raises(ef.EmbeddingFileError) as err:
        READERS[reader](good)
    msg = str(err.value)
    assert msg.startswith(f"embedding file {good} ")
    assert msg.endswith(f"rebuild it with: snakemake --cores 2 --forcerun {good}")
    assert "\n" not in msg


@pytest.mark.parametrize("how", ["truncated", "not-hdf5", "missing"])
def test_tolerant_readers_fall_back(good, how):
    assert ef.read_status(good)["budget"] == "60s/-"
    assert ef.earlier_repeats(good, "d", "m") == ([1.5], [100.0], [2.5])
    assert ef.earlier_repeats(good, "d", "other") == ([], [], [])
    _damage(good, how)
    assert ef.read_status(good) is None
    assert ef.earlier_repeats(good, "d", "m") == ([], [], [])


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"\x89HDF\x00\x01garbage\n", "is not a readable table (UnicodeDecodeError"),
        (b"dataset\tmeth", "lacks the column(s) method, metric, value (cut or damaged)"),
        (b"", "is not a readable table (EmptyDataError"),
    ],
)
def test_a_damaged_metrics_file_names_itself_and_the_command(tmp_path, content, problem):
    from scdrbench.summary.tables import metrics_table

    bad = tmp_path / "results" / "metrics" / "d" / "m.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(content)
    with pytest.raises(ScdrbenchError) as err:
        metrics_table([str(bad)])
    text = str(err.value)
    assert text.startswith(f"metrics file {bad} ") and problem in text
    assert text.endswith(f"rebuild it with: snakemake --cores 2 --forcerun {bad}")
    assert "\n" not in text


def test_a_damaged_dataset_file_names_itself(tmp_path):
    from scdrbench.summary.tables import read_dataset_meta

    bad = tmp_path / "pca.h5ad"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ScdrbenchError, match=r"dataset file .*pca.h5ad is not a readable pca"):
        read_dataset_meta(str(bad))
