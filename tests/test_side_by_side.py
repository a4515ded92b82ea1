"""benchmarks/bench_side_by_side.py: the project's t-SNE job against bare openTSNE, one table row
per pair, repeated pairs alternating their order with the median printed, appended to an
existing table without losing its rows; a rung that does not exist or no repeats stop with one
line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import make_blobs, write_pca_file

ROOT = Path(__file__).resolve().parents[1]

import bench_side_by_side as sbs  # noqa: E402


@pytest.fixture
def pca_file(tmp_path):
    X, y = make_blobs(n_per=100, n_classes=4, dims=50)
    path = tmp_path / "data" / "blobs" / "pca.h5ad"
    return write_pca_file(path, X, y, n_significant_pcs=10, n_genes=100)


@pytest.mark.slow
def test_tsne_side_by_side_appends_rows_and_keeps_older_rows(
    pca_file, tmp_path, monkeypatch, capsys
):
    import ladder_setup

    real = ladder_setup.ladder_config

    def shorter():  # the ladder's t-SNE entry, 150 iterations instead of 1,000 (test time)
        config = real()
        params = config["methods"]["tsne"]["params"]
        params.update(early_exaggeration_iter=50, n_iter=100)
        return config

    monkeypatch.setattr(ladder_setup, "ladder_config", shorter)
    out = tmp_path / "side_by_side.tsv"
    # a row of the table's earlier layout (no shared_with column)
    older = pd.DataFrame([{"dataset": "old", "method": "umap", "ratio": "1.083"}])
    older.to_csv(out, sep="\t", index=False)
    sbs.main(
        [str(pca_file), "--methods", "tsne", "--threads", "1", "--repeats", "2"]
        + ["--out", str(out), "--shared-with", "a unit test"]
    )
    table = pd.read_csv(out, sep="\t")
    assert list(table["method"]) == ["umap", "tsne", "tsne"]
    assert table.loc[0, "ratio"] == pytest.approx(1.083)
    assert table.loc[0, "shared_with"] == "not recorded"
    assert list(table["order"]) == ["bare first", "bare first", "project first"]
    lines = capsys.readouterr().out.splitlines()
    median = [line for line in lines if "median of 2 pairs" in line]
    assert len(median) == 1 and median[0].startswith("tsne on 400 cells, median of 2 pairs:")
    assert median[0].endswith(f"ratio {table['ratio'].iloc[1:].median():.3f}")
    row = table.iloc[1]
    assert row["dataset"] == "blobs" and row["n_cells"] == 400 and row["threads"] == 1
    assert row["project_fit_s"] > 0 and row["bare_fit_s"] > 0
    assert row["ratio"] == pytest.approx(row["project_fit_s"] / row["bare_fit_s"], rel=0.01)
    assert row["shared_with"] == "a unit test"
    assert '"perplexity": 30' in row["params"] and '"n_iter": 100' in row["params"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_repeats_is_one_line():
    with pytest.raises(SystemExit) as stop:
        sbs.main(["--rung", "100000", "--repeats", "0"])
    assert str(stop.value) == "--repeats 0: must be 1 or more (pairs per method)"


def test_a_rung_that_is_not_in_the_ladder_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        sbs.main(["--rung", "12345"])
    msg = str(stop.value)
    assert msg.startswith("--rung 12345: not a rung of benchmarks/ladder.yaml; use one of 10000")
    assert "1306127" in msg and "\n" not in msg
