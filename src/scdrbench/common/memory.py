"""Memory guard: fail before a fit that cannot fit in the job's allocation.

The allocation is SLURM's (``SLURM_MEM_PER_NODE``, or ``scontrol show job`` inside the
executor plugin's job step) when running under SLURM, else the rule's ``mem_mb``.
A job that fails here exits quickly with a clear message, and Snakemake's retry (with memory
growing per attempt) resubmits it with more; without the guard the job would swap or be killed
by the out-of-memory killer an hour in (and SLURM without cgroups never kills it at all).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess

from scdrbench.common.errors import ScdrbenchError

log = logging.getLogger("scdrbench.memory")


class MemoryGuardError(ScdrbenchError):
    """The estimated need exceeds the job's allocation."""

    exit_code = 3  # scdrbench.common.supervise.EXIT_MEMORY_GUARD


_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def _slurm_mb(value: str) -> float:
    """SLURM's memory notation (``250M``, ``2G``, ``512``: MB) in MB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", value.strip())
    if not m:
        raise ValueError(f"not a SLURM memory size: {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "M"]


def _scontrol_mb(job_id: str) -> float | None:
    """The memory SLURM allocated to ``job_id`` per node, from ``scontrol show job``."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "job", "-o", job_id],
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("memory guard: cannot ask scontrol about SLURM job %s: %s", job_id, err)
        return None
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    try:
        if "MinMemoryNode" in fields:
            return _slurm_mb(fields["MinMemoryNode"])
        if "MinMemoryCPU" in fields:
            return _slurm_mb(fields["MinMemoryCPU"]) * int(fields.get("NumCPUs", "1"))
    except ValueError as err:
        log.warning("memory guard: %s", err)
    return None


def allocation(mem_mb: float | None = None) -> tuple[float | None, str]:
    """``(MB, source)`` of the job's allocation, or ``(None, '')`` when unknown.

    In order: ``SLURM_MEM_PER_NODE`` (set in a SLURM batch script), ``SLURM_MEM_PER_CPU`` x
    ``SLURM_CPUS_ON_NODE``, ``scontrol show job $SLURM_JOB_ID`` (snakemake-executor-plugin-slurm
    runs the rule in an ``srun`` step whose environment keeps only ``SLURM_JOB_ID``), then the
    rule's ``mem_mb``.
    """
    job = os.environ.get("SLURM_JOB_ID", "")
    per_node = os.environ.get("SLURM_MEM_PER_NODE")
    per_cpu = os.environ.get("SLURM_MEM_PER_CPU")
    try:
        if per_node:
            return _slurm_mb(per_node), f"SLURM_MEM_PER_NODE of SLURM job {job or '?'}"
        if per_cpu:
            cpus = int(os.environ.get("SLURM_CPUS_ON_NODE", "1"))
            return _slurm_mb(per_cpu) * cpus, f"SLURM_MEM_PER_CPU x {cpus} CPUs of job {job}"
    except ValueError as err:
        log.warning("memory guard: ignoring %s", err)
    if job:
        have = _scontrol_mb(job)
        if have is not None:
            return have, f"SLURM job {job}'s allocation (scontrol)"
    return (float(mem_mb), "the rule's mem_mb") if mem_mb else (None, "")


def allocated_mb(mem_mb: float | None = None) -> float | None:
    """The job's memory allocation in MB: SLURM's, else ``mem_mb``, else unknown (None)."""
    return allocation(mem_mb)[0]


def check_memory(
    need_mb: float,
    *,
    mem_mb: float | None = None,
    what: str = "fit",
    budget_key: str | None = None,
) -> None:
    """Raise :class:`MemoryGuardError` if ``need_mb`` exceeds the allocation.

    ``budget_key``: ``mem_mb`` is the job's memory budget, set by this config key. The
    supervisor records the stop as skipped and Snakemake does not resubmit the job, so the
    message names the key to raise instead of Snakemake's retries."""
    if budget_key and mem_mb:
        have, source = float(mem_mb), f"its memory budget, config key {budget_key}"
        fix = (
            f"Raise {budget_key} in your config file on a node with that memory (docs/paper-run.md)"
        )
    else:
        have, source = allocation(mem_mb)
        fix = (
            "Snakemake resubmits it with more memory (mem_mb doubles per attempt; the profile's "
            "`retries`), or raise mem_mb for this rule"
        )
    if have is None:
        log.info("memory guard: %s needs ~%.0f MB; no allocation known", what, need_mb)
        return
    log.info("memory guard: %s needs ~%.0f MB of %.0f MB (%s)", what, need_mb, have, source)
    if need_mb > have:
        raise MemoryGuardError(
            f"memory guard: {what} needs about {need_mb:.0f} MB but the job has {have:.0f} MB "
            f"({source}); stopped before fitting. {fix}"
        )
