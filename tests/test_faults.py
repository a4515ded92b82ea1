"""Faults: a job killed with SIGKILL in each stage, then a re-run, gives the results of an
uninterrupted run (the real `snakemake`, tiny data)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_workflow import SNAKEMAKE, run_snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CONFIG = ROOT / "tests" / "config" / "budget.yaml"
# budgets every job meets (--config merges into the config file's): each runs to its end
# unless killed
OVERRIDE = [
    "--config",
    "budget={'methods': {'tsne': {'time': '10m'}, 'random': {'mem': '4G'}}}",
    "selection={'datasets': ['synthetic_tiny'], 'methods': ['random', 'pca']}",
]
STAGES = ["scripts.prepare", "scripts.embed", "scripts.metrics", "scripts.summary"]


def _copy(where: Path) -> Path:
    where.mkdir()
    for name in ("Snakefile", "config.yaml", "rules", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, where / name)
    return where


def _args(where):
    return ["--configfile", str(CONFIG), "--cores", "1", "--directory", str(where), *OVERRIDE]


def _job_pids(module: str, where: Path) -> list[int]:
    """This run's processes of ``python -m <module>`` (the job itself, not its supervised child):
    only those working in ``where``, never another workflow's on the same machine."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if f"-m {module} " not in cmd + " " or "--child" in cmd:
            continue
        try:
            if Path(proc.cwd()).resolve() == where.resolve():
                pids.append(proc.info["pid"])
        except (psutil.Error, OSError):
            continue
    return pids


def _kill_first(module: str, where: Path, timeout: float = 240) -> bool:
    """Run snakemake until a job of ``module`` starts, SIGKILL it, wait for snakemake to stop."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(
        [*SNAKEMAKE, *_args(where)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed = False
    start = time.time()
    while proc.poll() is None and time.time() - start < timeout:
        pids = _job_pids(module, where)
        if pids:
            time.sleep(0.3)  # let it get going
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except ProcessLookupError:
                    pass
            break
        time.sleep(0.05)
    proc.wait(timeout=timeout)
    return killed


def _digests(where: Path) -> dict[str, str]:
    """What must be the same: every metrics file, the metrics table, the coordinates."""
    import anndata as ad

    out = {}
    for path in sorted((where / "results" / "metrics").rglob("*.tsv")):
        out[str(path.relative_to(where))] = hashlib.sha256(path.read_bytes()).hexdigest()
    table = where / "results" / "tables" / "metrics.tsv"
    out["metrics.tsv"] = hashlib.sha256(table.read_bytes()).hexdigest()
    for path in sorted((where / "results" / "embed").rglob("*.h5ad")):
        xy = np.asarray(ad.read_h5ad(path).obsm["X_emb"])
        out[str(path.relative_to(where))] = hashlib.sha256(xy.tobytes()).hexdigest()
    return out


def test_sigkill_in_each_stage_then_rerun_equals_an_uninterrupted_run(tmp_path):
    clean = _copy(tmp_path / "clean")
    run_snakemake(*_args(clean))
    faulty = _copy(tmp_path / "faulty")
    killed = {stage: _kill_first(stage, faulty) for stage in STAGES}
    assert all(killed.values()), killed  # each stage's job was caught running and killed
    proc = run_snakemake(*_args(faulty))  # the re-run finishes what was left
    assert "Finished jobid" in proc.stdout + proc.stderr  # it had work left to do
    # no orphan of a killed job is left, and nothing half-written under a final name
    assert not any(_job_pids(s, faulty) for s in STAGES)
    assert not list((faulty / "results").rglob("*.tmp"))
    assert _digests(faulty) == _digests(clean)
    import pandas as pd

    timing = pd.read_csv(faulty / "results" / "tables" / "timing.tsv", sep="\t")
    assert set(timing["status"]) == {"ok"}  # real results, not status records
