"""Faults: a job killed with SIGKILL in each stage, then a re-run, gives the results of an
uninterrupted run (the real `snakemake`, tiny data)."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_data_download import RangeHandler
from tests.test_workflow import SNAKEMAKE, run_snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CONFIG = ROOT / "tests" / "config" / "budget.yaml"
# budgets every job meets (--config merges into the config file's): each runs to its end
# unless killed
OVERRIDE = [
    "--config",
    "budget={'methods': {'tsne': {'time': '10m'}, 'random': {'mem': '4G'}}}",
    "selection={'datasets': ['dl_tiny'], 'methods': ['random', 'pca']}",
]
# the data set is downloaded from a local, slow HTTP server (slow_server below)
# (the entry point each stage's jobs run: scripts/<stage>.py)
STAGES = ["download", "prepare", "embed", "score", "summary"]


def _copy(where: Path) -> Path:
    where.mkdir()
    for name in ("Snakefile", "config.yaml", "rules", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, where / name)
    return where


def _args(where, overlay):
    return [
        *("--configfile", str(CONFIG), str(overlay)),
        *("--cores", "1", "--directory", str(where), *OVERRIDE),
    ]


def _job_pids(stage: str, where: Path) -> list[int]:
    """This run's ``python .../scripts/<stage>.py`` processes: the job's Python itself (not the shell
    Snakemake starts it from, whose death would leave the job running as an orphan, and not its
    supervised child, which dies with it), and only those working in ``where``, never another
    workflow's on the same machine."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if not cmd or not Path(cmd[0]).name.startswith("python") or "--child" in cmd:
            continue
        if len(cmd) < 2 or not cmd[1].endswith(f"scripts/{stage}.py"):
            continue
        try:
            if Path(proc.cwd()).resolve() == where.resolve():
                pids.append(proc.info["pid"])
        except (psutil.Error, OSError):
            continue
    return pids


def _kill_first(stage: str, where: Path, *, args, timeout: float = 240, ready=None) -> bool:
    """Run snakemake until a job of ``stage`` starts (and ``ready()`` holds), SIGKILL it, wait
    for snakemake to stop."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(
        [*SNAKEMAKE, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed = False
    start = time.time()
    while proc.poll() is None and time.time() - start < timeout:
        pids = _job_pids(stage, where)
        if pids and (ready is None or ready()):
            time.sleep(0 if ready else 0.3)  # let it get going
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except ProcessLookupError:
                    pass  # it ended in the meantime: catch the next job of this stage
            if killed:
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


class SlowRangeHandler(RangeHandler):
    """The download tests' server (Range honoured), sending 16 KiB every 20 ms (~800 KB/s), so
    that a download takes seconds and can be killed half-way."""

    def do_GET(self):
        real = self.wfile

        class Slow:
            def write(self, data):
                for i in range(0, len(data), 16384):
                    real.write(data[i : i + 16384])
                    real.flush()
                    time.sleep(0.02)

            def flush(self):
                real.flush()

        self.wfile = Slow()
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed: what this test does
        finally:
            self.wfile = real


@pytest.fixture
def slow_server(tmp_path):
    from scdrbench.data.synthetic import SyntheticSpec, write_tenx_h5

    root = tmp_path / "srv"
    root.mkdir()
    # 2.4 MB: more than one of the downloader's 1 MiB blocks, so that a part is on disk
    write_tenx_h5(SyntheticSpec(n_cells=600, n_genes=3000, n_types=4, seed=3), str(root / "t.h5"))
    handler = type("H", (SlowRangeHandler,), {"root": root, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/t.h5", handler, root / "t.h5"
    httpd.shutdown()
    httpd.server_close()


def test_sigkill_in_each_stage_then_rerun_equals_an_uninterrupted_run(tmp_path, slow_server):
    url, handler, served = slow_server
    overlay = tmp_path / "download.yaml"
    overlay.write_text(
        "datasets:\n"
        f"  dl_tiny: {{source: tenx_h5, url: '{url}', labels: {{from: leiden}}, n_cells: 600}}\n"
    )
    clean = _copy(tmp_path / "clean")
    run_snakemake(*_args(clean, overlay))
    faulty = _copy(tmp_path / "faulty")
    handler.requests.clear()
    part = faulty / "results" / "downloads" / "dl_tiny" / "t.h5.part"
    killed = {}
    for stage in STAGES:
        # the download: once a first block is on disk, so that the re-run has a part to resume
        ready = (
            (lambda: part.exists() and part.stat().st_size >= 1 << 20)
            if "download" in stage
            else None
        )
        killed[stage] = _kill_first(stage, faulty, args=_args(faulty, overlay), ready=ready)
        if "download" in stage:
            assert 0 < part.stat().st_size < served.stat().st_size  # cut half-way
    assert all(killed.values()), killed  # each stage's job was caught running and killed
    # the summary job was killed, so work is left: its outputs are missing (none was written
    # by an orphan of the killed job after Snakemake had cleaned up)
    plan = run_snakemake(*_args(faulty, overlay), "--dry-run")
    logs = sorted((faulty / ".snakemake" / "log").glob("*.log"))
    assert "Nothing to be done" not in plan.stdout + plan.stderr, (
        sorted(str(p.relative_to(faulty)) for p in (faulty / "results").rglob("*.*")),
        logs[-1].read_text() if logs else "",
    )
    proc = run_snakemake(*_args(faulty, overlay))  # the re-run finishes what was left
    assert "Finished jobid" in proc.stdout + proc.stderr
    assert any(r and r.startswith("bytes=") for r in handler.requests)  # resumed (HTTP Range)
    got = faulty / "results" / "downloads" / "dl_tiny" / "t.h5"
    assert got.read_bytes() == served.read_bytes()
    # no orphan of a killed job is left, and nothing half-written under a final name
    assert not any(_job_pids(s, faulty) for s in STAGES)
    assert not list((faulty / "results").rglob("*.tmp"))
    assert _digests(faulty) == _digests(clean)
    import pandas as pd

    timing = pd.read_csv(faulty / "results" / "tables" / "timing.tsv", sep="\t")
    assert set(timing["status"]) == {"ok"}  # real results, not status records
