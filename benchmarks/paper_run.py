"""The paper run as a user types it: inputs, budgets, the run, and its export.

Usage (from the repository root; ``make paper`` runs ``run``)::

    python benchmarks/paper_run.py inputs               # make the stand-in inputs that are missing
    python benchmarks/paper_run.py budgets              # the budget block of benchmarks/paper.yaml
    python benchmarks/paper_run.py run [--cores 2]      # inputs, snakemake, export
    python benchmarks/paper_run.py run --cores 2 results/metrics/mouse_brain_1m/tsne_ae.tsv
    python benchmarks/paper_run.py run --shared-with "pytest at nice 19, 30 s"  # declare it
    python benchmarks/paper_run.py run --n-cells 20000  # the same on a small proxy (a check)
    python benchmarks/paper_run.py run --n-cells 3000 --methods pca tsne ae_keras ae_citeseq
    python benchmarks/paper_run.py export               # copy the products to paper_run/
    python benchmarks/paper_run.py progress             # the finished jobs to paper_run/progress

``inputs`` makes, under ``scratch/``, what ``benchmarks/paper.yaml`` reads when missing: the
1.3M proxy (the ladder's file, ``ladder.ensure_proxy``), its simulated antibodies
(``src/scdrbench/data/proxy_adt.py``) and the CBMC-sized CITE-seq pair. ``budgets`` derives the budget
block from the ladder's measured 1.3M jobs (``benchmarks/results/ladder.tsv``): ``TIME_MARGIN``
times each job's CPU seconds (its time on one thread; at least its wall time), ``MEM_MARGIN``
times its peak memory, at least each method's own memory model, rounded up, and
never over the node (``NODE_MEM``); a test keeps paper.yaml equal to it. ``run`` resumes (jobs that
finished earlier are not run again, and the lock of a sitting that ended mid-run is removed) and
``--keep-going``: a job past its budget ends as a status row and the tables and figures are still
made. ``run`` with targets runs only those (a part of the run that fits a sitting; no export).
Every ``run`` ends by merging its finished embedding jobs into ``paper_run/progress.{tsv,md}``
(``benchmarks/paper_progress.py``), to be committed: ``results/`` stays on its machine.
``export`` (``benchmarks/paper_export.py``) copies the figures, tables and findings to
``benchmarks/results/paper_run/`` with a README naming the machine, versions, date, command, every
part of the run (and what shared the machine with it) and its total compute (the sum of its jobs'
seconds, Snakemake's ``benchmark:`` rows, earlier runs of re-run jobs included), and each
embedding job's time against the estimate's prediction. A run with ``--n-cells`` works in ``scratch/paper_n{N}/`` and exports there, never to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

from ladder_setup import unlock_if_stale
from paper_estimate import CONFIG, LADDER, ROOT, estimate, write_estimate
from paper_export import export, record_sitting, update_ledger
from paper_progress import write_progress

CBMC_RNA = "scratch/cbmc_sim_rna.csv.gz"
CBMC_ADT = "scratch/cbmc_sim_adt.csv.gz"
EXPORT = ROOT / "benchmarks" / "results" / "paper_run"
#: Budget = a margin x the ladder's measured 1.3M job, at least the floors. Time: 3 x, since the
#: ladder's 1.3M jobs ran on an Intel Xeon VM and the paper run's PaCMAP job on an AMD EPYC VM
#: (both 2 cores, 24 GiB) ran past 1.69 x the Intel job's time (1,064 s fit; stopped at 30 min,
#: 2026-12-06); memory: 1.5 x (a peak does not depend on the CPU).
TIME_MARGIN = 3.0
MEM_MARGIN = 1.5
MIN_TIME_MIN = 10
MIN_MEM_G = 4
#: A 2-core, 24 GiB node: what a job may hold, leaving the system and Snakemake the rest.
NODE_MEM_G = 22


def ensure_inputs(n_cells: int | None = None) -> dict:
    """Make the stand-in inputs that are missing; returns ``{name: path}`` of them. With
    ``n_cells`` a proxy of that many cells (and its antibodies) goes under scratch/paper_n{N}/."""
    from scdrbench.data.proxy import PROXY_VERSION, spec_for
    from scdrbench.data.proxy_adt import adt_matches, write_citeseq_pair, write_proxy_adt

    if n_cells:
        work = ROOT / "scratch" / f"paper_n{n_cells}"
        proxy, adt = work / "proxy.h5", work / "proxy_adt.h5ad"
        if not proxy.exists():
            work.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "scdrbench.data.proxy",
                str(proxy),
                "--n-cells",
                str(n_cells),
            ]
            subprocess.run(cmd, cwd=ROOT, check=True)
    else:
        from ladder_setup import PROXY, ensure_adt, ensure_proxy

        ensure_proxy()
        proxy, adt = ROOT / PROXY, ensure_adt()
    if n_cells and not adt_matches(spec := spec_for(PROXY_VERSION, n_cells=n_cells), adt):
        print(json.dumps(write_proxy_adt(spec, str(adt))))
    if not ((ROOT / CBMC_RNA).exists() and (ROOT / CBMC_ADT).exists()):
        print(json.dumps(write_citeseq_pair(str(ROOT / CBMC_RNA), str(ROOT / CBMC_ADT))))
    return {"proxy": proxy, "adt": adt, "cbmc_rna": ROOT / CBMC_RNA, "cbmc_adt": ROOT / CBMC_ADT}


def budgets(ladder: str | Path = ROOT / LADDER) -> dict:
    """The paper config's ``budget`` block, from the ladder's 1.3M jobs (see the module doc)."""
    import pandas as pd

    from scdrbench.common.config import INPUT_DIMS
    from scdrbench.methods import get_method

    config = check_config([])
    lad = pd.read_csv(ladder, sep="\t", comment="#")
    top = lad[(lad["rung"] == lad["rung"].max()) & (lad["status"] == "ok")]
    top = top.drop_duplicates("method", keep="last").set_index("method")
    n = int(lad["rung"].max())
    methods = {}
    for m in config["selection"]["methods"]:
        if m not in top.index:
            continue  # not measured at 1.3M: the stage's budget (the ladder's)
        entry = config["methods"][m]
        model = get_method(entry["algorithm"]).estimate_memory_mb(
            n, config["preprocess"][INPUT_DIMS[entry["input"]]], **entry["params"]
        )
        # CPU seconds, not wall: the job as it would run on one thread (the paper's umap is
        # deterministic, pinned to one thread; the ladder ran it on two), at least its wall time
        base = max(top.at[m, "job_s"], top.at[m, "cpu_s"])
        minutes = max(MIN_TIME_MIN, 5 * math.ceil(TIME_MARGIN * base / 60 / 5))
        # the job's peak: the kernel's high-water mark where the row has it (Snakemake samples
        # memory every 30 s and misses short peaks: trimap's 7.0 GB read as 5.8)
        peak = top.loc[m, ["max_rss_mb", "peak_rss_mb"]].max()
        mem = max(MIN_MEM_G, math.ceil(max(MEM_MARGIN * peak, model) / 1024))
        methods[m] = {"time": f"{minutes}m", "mem": f"{min(mem, NODE_MEM_G)}G"}
    return {
        "stages": {
            "embed": {"time": "100m", "mem": f"{NODE_MEM_G}G"},
            "score": {"time": "60m", "mem": "16G"},
        },
        "methods": methods,
        "over_estimate": "skip",
    }


def small_override(n_cells: int, inputs: dict, methods: list[str] | None = None) -> Path:
    """A config file over paper.yaml for a run on a small proxy (absolute paths: it runs in its
    own directory), with only ``methods`` when given."""
    import yaml

    work = ROOT / "scratch" / f"paper_n{n_cells}"
    override = {
        "datasets": {
            "mouse_brain_1m": {
                "path": str(inputs["proxy"]),
                "adt_path": str(inputs["adt"]),
                "n_cells": n_cells,
                "subsample": [max(1000, n_cells // 10)],
            },
            "cbmc": {"path": str(inputs["cbmc_rna"]), "adt_path": str(inputs["cbmc_adt"])},
        },
        "findings": {"ladder": str(ROOT / LADDER)},
    }
    if methods:
        override["selection"] = {"datasets": ["cbmc", "mouse_brain_1m"], "methods": methods}
    path = work / "override.yaml"
    path.write_text(yaml.safe_dump(override, sort_keys=False))
    return path


def check_config(files: list[str]) -> dict:
    """config.yaml extended by ``files``, validated (what Snakemake reads)."""
    from scdrbench.stages.check_config import check

    return check(files)


def config_files(n_cells: int | None, inputs: dict | None = None, methods=None) -> list[Path]:
    """The config files of the run: the paper config, and over it a small run's override."""
    files = [ROOT / CONFIG]
    if n_cells:
        files.append(small_override(n_cells, inputs or ensure_inputs(n_cells), methods))
    return files


def run(
    cores: int,
    n_cells: int | None,
    methods: list[str] | None = None,
    targets: list[str] | None = None,
    shared_with: str = "",
) -> None:
    """Inputs, Snakemake over the whole paper DAG (or only ``targets``: a part of the run that
    fits a sitting), then the export (not after a part: the tables would be the last run's).
    ``shared_with``: what else runs on the machine meanwhile, for the export's list of parts."""
    inputs = ensure_inputs(n_cells)
    files = config_files(n_cells, inputs, methods)
    cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", *map(str, files)]
    work, out = ROOT, EXPORT
    if n_cells:
        work = ROOT / "scratch" / f"paper_n{n_cells}"
        cmd += ["--directory", str(work)]
        out = work / "export"
    cmd += ["--cores", str(cores)]
    # a sitting that ended mid-run left its lock: remove it when no Snakemake works there
    unlock_if_stale(work, cmd, who="paper run")
    cmd += ["--keep-going", "--rerun-incomplete", *(targets or [])]
    # quoted as typed: --shared-with "..." is one argument
    record_sitting(work / "results", cores, shlex.join(sys.argv), shared_with)
    # the benchmark rows of earlier parts, before a job that runs again rewrites its file
    update_ledger(work / "results")
    print(" ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, check=False)
    update_ledger(work / "results")
    config = check_config([str(f) for f in files])
    print(write_progress(work / "results", out, config, shlex.join(sys.argv)))
    if targets:
        print(
            f"a part of the paper run (exit status {proc.returncode}); `run` without targets "
            "finishes it and exports"
        )
        return
    export(
        work / "results",
        out,
        command=shlex.join(sys.argv),
        returncode=proc.returncode,
        config=config,
        predicted=None if n_cells else estimate()[0],
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("inputs").add_argument("--n-cells", type=int)
    sub.add_parser("budgets")
    r = sub.add_parser("run")
    r.add_argument("--cores", type=int, default=2)
    r.add_argument("--n-cells", type=int, help="a small proxy instead of the 1.3M one (a check)")
    r.add_argument("--methods", nargs="+", help="with --n-cells: only these methods (a check)")
    r.add_argument(
        "--shared-with",
        default="",
        help="what else runs on the machine during this part (listed in the export's README)",
    )
    r.add_argument(
        "targets",
        nargs="*",
        help="only these outputs: a part of the run that fits a sitting (no export)",
    )
    sub.add_parser("export")
    sub.add_parser("progress", help="the finished jobs under results/ to paper_run/progress")
    sub.add_parser("estimate", help="the run's cost on 2 and 32 cores, from the ladder")
    a = p.parse_args(argv)
    if a.command == "inputs":
        print({k: str(v) for k, v in ensure_inputs(a.n_cells).items()})
    elif a.command == "budgets":
        import yaml

        print(yaml.safe_dump({"budget": budgets()}, sort_keys=False))
    elif a.command == "run":
        if a.methods and not a.n_cells:
            p.error("--methods only with --n-cells: the paper run is the whole selection")
        run(a.cores, a.n_cells, a.methods, a.targets, a.shared_with)
    elif a.command == "estimate":
        print(write_estimate(*estimate()))
    elif a.command == "progress":
        config = check_config([str(f) for f in config_files(None)])
        print(write_progress(ROOT / "results", EXPORT, config, shlex.join(sys.argv)))
    else:
        config = check_config([str(f) for f in config_files(None)])
        export(
            ROOT / "results",
            EXPORT,
            command=shlex.join(sys.argv),
            config=config,
            predicted=estimate()[0],
        )


if __name__ == "__main__":
    main()
