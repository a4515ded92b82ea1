"""The resource policy of the workflow's jobs: memory and runtime requests, budgets, retries.

``rules/common.smk`` wraps each function in a thin ``get_*`` resource or param function; the
policy itself lives here so that it can be tested without Snakemake (tests/test_resources.py).

- **Memory** (``mem_mb``): the stage's or method's memory budget (config ``budget``) when one is
  set; else a base plus bytes per cell by stage, and for an embedding job the method's own
  memory model (the estimate its memory guard checks) with headroom; doubled on each attempt, so
  a job stopped by the guard or killed for memory comes back with more.
- **Runtime** (``runtime_min``): the time budget plus a few minutes' headroom (the supervisor
  ends the job at the budget and records it), else from the data set's size, times the attempt.
- **Budgets** (``budget_time_s``, ``budget_mem_mb``): the supervisor's limits, 0 for none.
- **Retries** (``retry_token``): an embedding recorded with a failed status re-runs only when
  its budget has grown since.
"""

from __future__ import annotations

from scdrbench.common.budget import Budget, job_budget
from scdrbench.common.config import INPUT_DIMS

#: MB every job of a stage needs whatever its size.
MEM_BASE_MB = {"prepare": 2000, "preprocess": 2000, "embed": 1500, "score": 1500}
#: KB per cell of the stages without a memory model of their own.
MEM_PER_CELL_KB = {"prepare": 8, "preprocess": 6, "score": 2}
#: An embedding job's request over its method's memory model.
MODEL_HEADROOM = 1.5
#: Minutes every job gets, and minutes per 1,000 cells by stage, when no time budget is set.
RUNTIME_BASE_MIN = 10
RUNTIME_PER_1000_CELLS_MIN = {"prepare": 0.3, "preprocess": 0.3, "embed": 1.0, "score": 0.3}
#: The summary figure reads every embedding's coordinates once: bytes per cell per method.
SUMMARY_BASE_MB = 1500
SUMMARY_BYTES_PER_CELL_METHOD = 64


def method_memory_mb(config: dict, method: str, n_cells: int) -> float:
    """The method's memory model (its ``estimate_memory_mb``) for ``n_cells`` of its input."""
    from scdrbench.methods import get_method

    entry = config["methods"][method]
    dims = config["preprocess"][INPUT_DIMS[entry["input"]]]
    return get_method(entry["algorithm"]).estimate_memory_mb(n_cells, dims, **entry["params"])


def mem_mb(config: dict, stage: str, n_cells: int, method: str | None = None, attempt: int = 1):
    """Memory in MB for a job of ``stage`` on ``n_cells`` cells (``method``: an embedding's)."""
    budget = job_budget(config, stage, method)
    if budget.mem_mb is not None:
        return int(budget.mem_mb)
    if stage == "embed":
        need = MEM_BASE_MB[stage] + MODEL_HEADROOM * method_memory_mb(config, method, n_cells)
    else:
        need = MEM_BASE_MB[stage] + n_cells * MEM_PER_CELL_KB[stage] / 1024
    return int(need * 2 ** (attempt - 1))


def runtime_min(
    config: dict, stage: str, n_cells: int, method: str | None = None, attempt: int = 1
) -> int:
    """Runtime in minutes for a job of ``stage`` on ``n_cells`` cells."""
    budget = job_budget(config, stage, method)
    if budget.time_s is not None:
        return budget.runtime_min()
    minutes = RUNTIME_BASE_MIN + n_cells / 1000 * RUNTIME_PER_1000_CELLS_MIN[stage]
    return int(minutes * attempt)


def budget_time_s(config: dict, stage: str, method: str | None = None) -> int:
    """The supervisor's time limit in seconds, 0 for none."""
    return int(job_budget(config, stage, method).time_s or 0)


def budget_mem_mb(config: dict, stage: str, method: str | None = None) -> int:
    """The supervisor's memory limit in MB, 0 for none."""
    return int(job_budget(config, stage, method).mem_mb or 0)


def retry_token(config: dict, method: str, status: dict | None) -> str:
    """The embedding job's retry param, from the status of its existing file (None: no file).

    It changes, so that Snakemake re-runs the job, only when the file is a status record
    (timeout, out of memory...) and the budget has since grown; otherwise it is the token the
    file was made with (stored in it), so a changed budget never re-runs a job that succeeded,
    or one that failed with the same budget.
    """
    if status is None:
        return ""
    budget = job_budget(config, "embed", method)
    if status["status"] != "ok" and budget.exceeds(Budget.from_token(status["budget"])):
        return f"retry with {budget.token()}"
    return status["retry_token"]


def summary_mem_mb(total_cells: int, n_methods: int, attempt: int = 1) -> int:
    """Memory for the summary figure: every embedding's coordinates are read once."""
    need = SUMMARY_BASE_MB + total_cells * n_methods * SUMMARY_BYTES_PER_CELL_METHOD / 1e6
    return int(need * attempt)
