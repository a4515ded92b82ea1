"""The ladder's measured peaks: one file, written by the ladder's report and read by the tests."""

from __future__ import annotations

import pandas as pd

from scdrbench.common import peaks


def test_written_peaks_read_back_rounded_and_sorted(tmp_path):
    path = tmp_path / "peaks.tsv"
    rows = [("umap", 1306127.0, 15741.06), ("tsne", 10000, 424.15), ("tsne", 1000, 99.5)]
    peaks.write(rows, path, header=["date: today", "machine: here"])
    text = path.read_text().splitlines()
    assert text[:3] == ["# date: today", "# machine: here", "job\tn_cells\tpeak_rss_mb"]
    assert text[3:5] == ["tsne\t1000\t100", "tsne\t10000\t424"]
    assert peaks.read(path) == {"tsne": {1000: 100, 10000: 424}, "umap": {1306127: 15741}}


def test_the_committed_file_is_the_ladder_tables_ok_rows():
    """benchmarks/results/measured_peaks.tsv equals what ladder_report.write_peaks makes of the
    committed ladder.tsv: every job's peak at each rung it finished ok, with the ladder's header
    (date, machine, versions, command)."""
    table = pd.read_csv(peaks.MEASURED_PEAKS.parent / "ladder.tsv", sep="\t", comment="#")
    ok = table[table["status"] == "ok"].sort_values("peak_rss_mb", kind="stable")
    ok = ok.drop_duplicates(["method", "n_cells"], keep="last")  # the larger of two versions'
    measured = peaks.read()
    assert sum(len(v) for v in measured.values()) == len(ok)
    for row in ok.itertuples():
        assert measured[row.method][int(row.n_cells)] == round(row.peak_rss_mb)
    head = [line for line in peaks.MEASURED_PEAKS.read_text().splitlines() if line[:1] == "#"]
    for key in ("date:", "machine:", "versions:", "command:"):
        assert any(line.startswith(f"# {key}") for line in head), key
