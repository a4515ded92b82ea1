"""Time and memory budgets per job, and the status a job ends with.

A budget (config key ``budget``) caps each embedding and scoring job: ``time`` is a duration
(``90s``, ``100m``, ``1.5h``), ``mem`` a size (``500M``, ``22G``). The stage's budget
(``budget.stages.<stage>``) applies to every job of the stage, a method's own
(``budget.methods.<method id>``) overrides it for that method's embedding jobs. A job that runs
past its budget is stopped by its supervisor (:mod:`scdrbench.common.supervise`) and recorded with
a status instead of failing the workflow, as Open Problems records exit codes 137/143:

========================= ==============================================================
``ok``                    finished within its budget
``timeout``               "timeout after 100 min"
``out_of_memory``         "out of memory at 22 GiB"
``error``                 "error: <the job's one-line message>"
``skipped``               "skipped: its memory model needs about 85 GiB, budget 22 GiB"
========================= ==============================================================

Under SLURM the same budget is the job's request (``mem_mb``; ``runtime`` with a few minutes'
headroom so the supervisor, not SLURM, ends a job that runs over and records its status).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from scdrbench.common.errors import ScdrbenchError

STATUSES = ("ok", "timeout", "out_of_memory", "error", "skipped")
FAILED = tuple(s for s in STATUSES if s != "ok")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(M|MB|MiB|G|GB|GiB|T|TB|TiB)\s*$")
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_MB = {"M": 1, "MB": 1, "MiB": 1, "G": 1024, "GB": 1024, "GiB": 1024, "T": 1024**2}
_MB.update({"TB": 1024**2, "TiB": 1024**2})

#: Minutes of SLURM time limit beyond the time budget: the supervisor ends the job first.
RUNTIME_HEADROOM_MIN = 5


def parse_duration(value, key: str = "budget.time") -> float:
    """``'100m'`` -> 6000.0 seconds; anything else that is not a positive duration is an error."""
    m = _DURATION.match(str(value))
    seconds = float(m.group(1)) * _SECONDS[m.group(2)] if m else 0.0
    if not m or seconds <= 0:
        raise ScdrbenchError(
            f"config key '{key}': {value!r} is not a positive duration; write it as a number "
            "and a unit, e.g. 90s, 100m or 1.5h"
        )
    return seconds


def parse_size(value, key: str = "budget.mem") -> float:
    """``'22G'`` -> 22528.0 MB; anything else that is not a positive size is an error."""
    m = _SIZE.match(str(value))
    mb = float(m.group(1)) * _MB[m.group(2)] if m else 0.0
    if not m or mb <= 0:
        raise ScdrbenchError(
            f"config key '{key}': {value!r} is not a positive memory size; write it as a number "
            "and a unit, e.g. 500M or 22G"
        )
    return mb


def format_duration(seconds: float) -> str:
    """6000 -> '100 min'; 5400 -> '90 min'; 30 -> '30 s'; 9000 -> '2.5 h'."""
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.3g} h"


def format_size(mb: float) -> str:
    """22528 -> '22 GiB'; 500 -> '500 MiB'."""
    return f"{mb / 1024:.3g} GiB" if mb >= 1024 else f"{mb:.0f} MiB"


@dataclass(frozen=True)
class Budget:
    """A job's budget: seconds and MB, None where the config sets no limit."""

    time_s: float | None = None
    mem_mb: float | None = None
    time_key: str = ""
    mem_key: str = ""

    def exceeds(self, other: Budget) -> bool:
        """True if this budget is larger than ``other`` in time or memory (a retry is worth it)."""

        def larger(a, b):
            return (a is None and b is not None) or (None not in (a, b) and a > b)

        return larger(self.time_s, other.time_s) or larger(self.mem_mb, other.mem_mb)

    def describe(self) -> str:
        parts = [format_duration(self.time_s) if self.time_s else "no time limit"]
        parts.append(format_size(self.mem_mb) if self.mem_mb else "no memory limit")
        return ", ".join(parts)

    def token(self) -> str:
        """A compact stable string of the budget, e.g. ``'6000s/22528MB'``."""
        t = f"{self.time_s:g}s" if self.time_s else "-"
        m = f"{self.mem_mb:g}MB" if self.mem_mb else "-"
        return f"{t}/{m}"

    @classmethod
    def from_token(cls, token: str) -> Budget:
        t, _, m = str(token).partition("/")
        return cls(
            time_s=float(t[:-1]) if t not in ("", "-") else None,
            mem_mb=float(m[:-2]) if m not in ("", "-") else None,
        )

    def runtime_min(self) -> int | None:
        """SLURM time limit in minutes: the budget plus headroom."""
        if self.time_s is None:
            return None
        return int(math.ceil(self.time_s / 60)) + RUNTIME_HEADROOM_MIN


def job_budget(config: dict, stage: str, method: str | None = None) -> Budget:
    """The budget of one job: the method's own entries over the stage's, parsed and checked."""
    section = config.get("budget") or {}
    stage_entry = (section.get("stages") or {}).get(stage) or {}
    method_entry = ((section.get("methods") or {}).get(method) or {}) if stage == "embed" else {}
    out = {}
    for field, parse in (("time", parse_duration), ("mem", parse_size)):
        if field in method_entry:
            key = f"budget.methods.{method}.{field}"
            out[field] = (parse(method_entry[field], key), key)
        elif field in stage_entry:
            key = f"budget.stages.{stage}.{field}"
            out[field] = (parse(stage_entry[field], key), key)
        else:
            out[field] = (None, "")
    return Budget(
        time_s=out["time"][0], mem_mb=out["mem"][0], time_key=out["time"][1], mem_key=out["mem"][1]
    )


def check_budgets(config: dict) -> None:
    """Parse every budget entry (a bad one is a ConfigError naming its key) and its method ids."""
    from scdrbench.common.errors import ConfigError

    section = config.get("budget") or {}
    for stage in section.get("stages") or {}:
        try:
            job_budget(config, stage)
        except ScdrbenchError as err:
            raise ConfigError(str(err)) from None
    for method in section.get("methods") or {}:
        if method not in config["methods"]:
            raise ConfigError(
                f"config key 'budget.methods.{method}': unknown method id; known ids: "
                f"{', '.join(sorted(config['methods']))}"
            )
        try:
            job_budget(config, "embed", method)
        except ScdrbenchError as err:
            raise ConfigError(str(err)) from None


def status_message(status: str, budget: Budget, detail: str = "") -> str:
    """The one-line text of a status, e.g. ``'timeout after 100 min'``."""
    if status == "timeout":
        return f"timeout after {format_duration(budget.time_s or 0)}"
    if status == "out_of_memory":
        where = f"at {format_size(budget.mem_mb)}" if budget.mem_mb else "(killed by the kernel)"
        return f"out of memory {where}" + (f" ({detail})" if detail else "")
    if status == "error":
        return f"error: {detail}"
    if status == "skipped":
        return f"skipped: {detail}"
    if status == "interrupted":
        return f"interrupted ({detail})" if detail else "interrupted"
    return "ok"
