"""Memory guard: fail before a fit that cannot fit in the job's allocation.

The allocation is SLURM's ``SLURM_MEM_PER_NODE`` (MB) when set, else the rule's ``mem_mb``.
A job that fails here exits quickly with a clear message, and Snakemake's retry (with memory
growing per attempt) resubmits it with more; without the guard the job would swap or be killed
by the out-of-memory killer an hour in (and SLURM without cgroups never kills it at all).
"""

from __future__ import annotations

import logging
import os

from scripts.common.errors import ScdrbenchError

log = logging.getLogger("scdrbench.memory")


class MemoryGuardError(ScdrbenchError):
    """The estimated need exceeds the job's allocation."""


def allocated_mb(mem_mb: float | None = None) -> float | None:
    """The job's memory allocation in MB: SLURM's, else ``mem_mb``, else unknown (None)."""
    slurm = os.environ.get("SLURM_MEM_PER_NODE")
    if slurm:
        try:
            return float(slurm)
        except ValueError:
            log.warning("ignoring unparsable SLURM_MEM_PER_NODE=%r", slurm)
    return float(mem_mb) if mem_mb else None


def check_memory(need_mb: float, *, mem_mb: float | None = None, what: str = "fit") -> None:
    """Raise :class:`MemoryGuardError` if ``need_mb`` exceeds the allocation."""
    have = allocated_mb(mem_mb)
    if have is None:
        log.info("memory guard: %s needs ~%.0f MB; no allocation known", what, need_mb)
        return
    log.info("memory guard: %s needs ~%.0f MB of %.0f MB allocated", what, need_mb, have)
    if need_mb > have:
        raise MemoryGuardError(
            f"memory guard: {what} needs about {need_mb:.0f} MB but the job has {have:.0f} MB "
            "(mem_mb / SLURM_MEM_PER_NODE); it was stopped before fitting. Snakemake retries "
            "with more memory per attempt (--retries), or raise mem_mb for this rule"
        )
