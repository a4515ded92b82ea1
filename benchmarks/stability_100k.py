"""Stability at 100,000 cells on the 1.3M-cell proxy: t-SNE, UMAP and both autoencoders.

Usage (from the repository root; ``make stability-100k``)::

    python benchmarks/stability_100k.py run      # proxy if missing, the jobs, then the export
    python benchmarks/stability_100k.py export   # the export alone (what has finished)

``run`` makes the ladder's proxy if it is missing (``ladder_setup.ensure_proxy``), then runs the
workflow's own stability stage through Snakemake with ``benchmarks/ladder.yaml`` and
``benchmarks/stability_100k.yaml`` (3 seeds on all cells and 3 fixed-seed subsamples of 80% per
method, 2 threads per job, the ladder's budgets). ``export`` copies its table and figure to
``benchmarks/results/stability_100k.{tsv,md,png}`` with the machine, versions, date, proxy
version and command in a header.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess

import ladder_setup as L

OVERLAY = "benchmarks/stability_100k.yaml"
TABLES = ("results/tables/stability.tsv", "results/tables/stability.md")
FIGURE = "results/figures/stability.png"
OUT = L.RESULTS / "stability_100k"


def run(cores: int, shared_with: str) -> None:
    L.ensure_proxy()
    L.ensure_adt()
    L.unlock_if_stale()
    cmd = ["snakemake", "--configfile", L.CONFIG, OVERLAY, "--cores", str(cores)]
    cmd += ["--rerun-triggers", "mtime", "input", "--rerun-incomplete", *TABLES, FIGURE]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=L.ROOT, check=True)
    export(shared_with)


def header(shared_with: str) -> list[str]:
    from scdrbench.common.provenance import machine, versions

    record = json.loads((L.ROOT / L.RECORD).read_text())
    return [
        "Stability at 100,000 cells of the 1.3M-cell proxy (benchmarks/stability_100k.py)",
        f"date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {machine()}",
        L.shared_with_line(shared_with),
        f"versions: {versions()}",
        "command: make stability-100k  (python benchmarks/stability_100k.py run)",
        f"config: {L.CONFIG} + {OVERLAY} (2 threads per job; 3 seeds, 3 subsamples of 80%)",
        f"proxy: version {record['spec'].get('version', 1)}, sha256 {record['sha256']}; labels: "
        "the simulated types",
    ]


def export(shared_with: str) -> None:
    head = header(shared_with)
    tsv, md = (L.ROOT / p for p in TABLES)
    with open(OUT.with_suffix(".tsv"), "w") as fh:
        fh.writelines(f"# {line}\n" for line in head)
        fh.write(tsv.read_text())
    quoted = "\n".join(f"> {line}  " for line in head)
    OUT.with_suffix(".md").write_text(quoted + "\n\n" + md.read_text())
    shutil.copyfile(L.ROOT / FIGURE, OUT.with_suffix(".png"))
    print(OUT.with_suffix(".md").read_text())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--cores", type=int, default=2)
    for sp_ in (r, sub.add_parser("export")):
        sp_.add_argument("--shared-with", default=L.SHARED_WITH_DEFAULT)
    a = p.parse_args(argv)
    if a.command == "run":
        run(a.cores, a.shared_with)
    else:
        export(a.shared_with)


if __name__ == "__main__":
    main()
