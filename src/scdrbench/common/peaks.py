"""The memory peaks the scaling ladder measured: one data file, written by the ladder.

``benchmarks/results/measured_peaks.tsv`` holds one row per ladder job (a method id of the
config or of ``benchmarks/ladder.yaml``) and rung that finished ``ok``: the kernel's high-water
mark of the job in MB (rounded), 50 PCs, 2 threads. ``python benchmarks/ladder.py table``
rewrites it from the ladder's table (``benchmarks/ladder_report.py``); the tests check the
methods' memory models against it (tests/test_registry.py), so no module keeps a copy.
"""

from __future__ import annotations

import csv

from scdrbench.common.paths import WORKFLOW_ROOT

MEASURED_PEAKS = WORKFLOW_ROOT / "benchmarks" / "results" / "measured_peaks.tsv"
COLUMNS = ("job", "n_cells", "peak_rss_mb")


def write(rows, path=MEASURED_PEAKS, header=()) -> None:
    """``rows``: (job, n_cells, peak MB) triples; ``header``: comment lines (no '#')."""
    with open(path, "w", newline="") as fh:
        fh.writelines(f"# {line}\n" for line in header)
        out = csv.writer(fh, delimiter="\t", lineterminator="\n")
        out.writerow(COLUMNS)
        for job, n_cells, peak in sorted(rows, key=lambda r: (r[0], int(r[1]))):
            out.writerow((job, int(n_cells), int(round(float(peak)))))


def read(path=MEASURED_PEAKS) -> dict[str, dict[int, int]]:
    """{job: {cells: peak MB}} from the file."""
    with open(path, newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    peaks: dict[str, dict[int, int]] = {}
    for row in csv.DictReader(lines, delimiter="\t"):
        peaks.setdefault(row["job"], {})[int(row["n_cells"])] = int(row["peak_rss_mb"])
    return peaks
