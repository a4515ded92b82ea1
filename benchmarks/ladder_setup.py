"""What the scaling ladder is: its config, data set, rungs, proxy file and result paths.

Shared by ``ladder.py`` (the runs) and ``ladder_report.py`` (the table), which import this module
and never each other's; ``unlock_if_stale`` clears the lock a sitting that ended mid-run left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = "benchmarks/ladder.yaml"
DATASET = "proxy_1m"
PROXY = "scratch/proxy_1m.h5"
LABELS = "scratch/proxy_1m_labels.csv"
#: The proxy's simulated antibodies (``scdrbench.data.proxy_adt``), so ae_citeseq runs on its cells
PROXY_ADT = "scratch/proxy_1m_adt.h5ad"
RECORD = "benchmarks/results/proxy_1m.json"
RESULTS = ROOT / "benchmarks" / "results"
#: What else ran on the machine while the ladder ran (written into the table's header).
SHARED_WITH_DEFAULT = "nothing else"


def shared_with_line(text: str) -> str:
    """A header's "shared with:" line, one line whatever was passed (a newline from a text file
    would end the TSV's comment and break reading the table back)."""
    return f"shared with: {' '.join(text.split())}"


def ladder_config() -> dict:
    """The validated ladder config (config.yaml extended by benchmarks/ladder.yaml, merged as
    Snakemake merges a --configfile: ``scdrbench.stages.check_config.check``)."""
    from scdrbench.stages.check_config import check

    return check([str(ROOT / CONFIG)])


def rung_ids(config: dict) -> dict[int, str]:
    """``{n_cells: dataset id}`` of every rung, smallest first."""
    entry = config["datasets"][DATASET]
    rungs = {size: f"{DATASET}_n{size}" for size in entry["subsample"]}
    rungs[entry["n_cells"]] = DATASET
    return dict(sorted(rungs.items()))


def ensure_proxy() -> dict:
    """Generate the proxy unless the file is there with the recorded checksum and the record
    is of the generator's current version (``scdrbench.data.proxy.PROXY_VERSION``)."""
    from scdrbench.data.proxy import PROXY_VERSION, sha256sum

    record = json.loads((ROOT / RECORD).read_text()) if (ROOT / RECORD).exists() else None
    path = ROOT / PROXY
    version = record.get("spec", {}).get("version", 1) if record else None
    if record and version != PROXY_VERSION:
        print(f"proxy {PROXY}: {RECORD} is version {version}; generating version {PROXY_VERSION}")
    elif record and path.exists() and (ROOT / LABELS).exists():
        if path.stat().st_size == record.get("size") and sha256sum(str(path)) == record["sha256"]:
            print(f"proxy {PROXY}: present, sha256 matches {RECORD}")
            return record
        print(f"proxy {PROXY}: checksum differs from {RECORD}; generating it again")
    cmd = [sys.executable, "-m", "scdrbench.data.proxy", PROXY, "--labels", LABELS]
    cmd += ["--record", RECORD]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads((ROOT / RECORD).read_text())


def ensure_adt() -> Path:
    """The proxy's simulated antibodies (13, driven by its types: seconds), made again when
    missing or made for another proxy (``adt_matches``); returns the file's path."""
    from scdrbench.data.proxy import PROXY_VERSION, spec_for
    from scdrbench.data.proxy_adt import adt_matches, write_proxy_adt

    spec, adt = spec_for(PROXY_VERSION), ROOT / PROXY_ADT
    if not adt_matches(spec, adt):
        print(json.dumps(write_proxy_adt(spec, str(adt))))
    return adt


SKIPS = RESULTS / "ladder_skips.json"


def snakemake_running_in(root: Path) -> bool:
    """Whether a Snakemake process works in ``root`` (``snakemake ...`` or ``python -m
    snakemake ...``, any user this process may inspect)."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["pid"] == os.getpid() or not cmd:
            continue
        head = [Path(c).name for c in cmd[:3]]
        if "snakemake" not in head and cmd[1:3] != ["-m", "snakemake"]:
            continue
        try:
            if Path(proc.cwd()).resolve() == root.resolve():
                return True
        except (psutil.Error, OSError):
            continue
    return False


def unlock_if_stale(
    root: Path = ROOT, command: list[str] | None = None, who: str = "ladder"
) -> bool:
    """A sitting that ends mid-run (the session closes, the machine goes away) leaves
    Snakemake's lock behind, and the next ``run`` would stop at "Directory cannot be locked".
    When no Snakemake works in ``root``, the lock is stale: remove it (``snakemake --unlock``,
    with ``command``, the run's own Snakemake command, when given) and say so. A live run's lock
    is left alone. Returns whether a lock was removed."""
    locks = root / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()) or snakemake_running_in(root):
        return False
    print(
        f"{who}: {locks.relative_to(root)} holds the lock of an earlier run that no longer runs "
        "(no Snakemake works in this directory): removing it with snakemake --unlock",
        flush=True,
    )
    cmd = command or ["snakemake", "--configfile", CONFIG, "--cores", "1", "all"]
    cmd = [*cmd, "--unlock", "--quiet"]
    cwd = ROOT if command else root
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return True
