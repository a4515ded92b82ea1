"""Where a measurement was made: the machine and the library versions, for result headers.

Every committed table under ``benchmarks/results/`` names the machine, the versions, the date and
the command in a header its benchmark writes; these are the first two.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

#: Distributions named in a header's versions line (those installed; the others are left out).
VERSIONED = (
    "numpy", "scipy", "scikit-learn", "scanpy", "anndata", "openTSNE", "umap-learn",
    "pynndescent", "numba", "tensorflow-cpu", "tensorflow", "keras", "snakemake",
)  # fmt: skip


def versions(names: tuple[str, ...] = VERSIONED) -> str:
    """``python 3.11.9, numpy 2.4.6, ...``: Python and each of ``names`` that is installed."""
    out = [f"python {platform.python_version()}"]
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(out)


def machine() -> str:
    """``host: CPU model, cores, GiB RAM, OS`` of this machine."""
    import psutil

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()}"
    )
