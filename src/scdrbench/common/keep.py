"""The last good result of a job, kept through a failed re-run.

The embedding, scoring and stability rules flag their outputs with Snakemake's ``update()``, so
Snakemake leaves the previous file in place while the job runs (and restores its own backup if
the job exits non-zero, e.g. when interrupted). Our jobs write their outputs atomically, so the
previous file is never half-overwritten. What this module adds is the decision the supervisor
takes when the work fails with a status (error, timeout, out of memory, skipped):

- the previous file is a *good* result (status ``ok``) made from the *same input files* (size
  and modification time unchanged since it was made): it stays, byte for byte, and a note of
  the failed re-run is written beside it; the summary shows the kept result and marks it with
  the re-run's one-line reason;
- otherwise (no previous file, a previous status record, or inputs that changed since, e.g.
  re-made PCs with other cells): the job writes its status record, as on a first run.

The state of each output lives in a small JSON file beside it, ``.<name>.state.json``:
``{"status": ..., "finished": ..., "inputs": [[path, size, mtime_ns], ...], "output": [size,
sha256], "rerun_failed": null | {"status", "message", "date"}, "retry": ""}``. A later
successful run rewrites it (the note disappears). Snakemake records the re-run's parameters for
the kept file, so running again with the same configuration does nothing after a
*deterministic* failure (an error of the method with these inputs and parameters, or a stop at
a budget that has not changed): the failure stays shown until the configuration changes (or
``--forcerun``); ``rerun_failures`` lists every such note and the plan banner prints them at
each start.

**A failure caused by the environment is retried by the next plain run.** No space, no
permission, a read-only file system, too many open files (exit 75 of a job,
:data:`~scdrbench.common.errors.EXIT_ENVIRONMENT`), a signal (interrupted) or the kernel's
out-of-memory killer are not the inputs' fault. Snakemake alone would never retry such a job:
after a failed job it restores the previous version of an ``update()`` output with a new
modification time, and after a kept result the job even counts as done. So every job that
keeps or restores its outputs has a parameter ``retry_after``, :func:`retry_token` of
its first output: the ``retry`` field of the state, the id of that output's *last* failure by
the environment (or, for the summary jobs, its last failure of any kind: a restored table or
figure must be drawn again). :func:`note_retry` writes a new id at such a failure; a success
keeps it. Snakemake compares parameters with the ones recorded at the last success, so the
next run sees a changed ``retry_after`` exactly once after each such failure and runs the job again
(``reason: Params have changed``); once that run succeeded, its record holds the same id and
nothing more runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from scdrbench.common.errors import EnvironmentFailure, ScdrbenchError
from scdrbench.common.io import sha256sum, write_text

STATE_SUFFIX = ".state.json"


def state_path(output: str | os.PathLike) -> Path:
    """The state file of ``output``: ``<dir>/.<name>.state.json``."""
    p = Path(output)
    return p.parent / f".{p.name}{STATE_SUFFIX}"


def _stat(path: str | os.PathLike) -> list:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _content(path: str | os.PathLike) -> list:
    """Size and sha256 of an output (Snakemake touches outputs after a job: no mtime here)."""
    return [os.path.getsize(path), sha256sum(path)]


def fingerprint(inputs) -> list[list]:
    """``[path, size, mtime_ns]`` of each input (``None`` for a missing one)."""
    out = []
    for p in inputs:
        try:
            out.append([str(p), *_stat(p)])
        except OSError:
            out.append([str(p), None, None])
    return out


def read_state(output: str | os.PathLike) -> dict | None:
    """The state recorded for ``output``, or None (missing or unreadable: no claim is made)."""
    try:
        state = json.loads(state_path(output).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def record(outputs, inputs, status: str, *, retry: bool = False) -> None:
    """After a job wrote its outputs (a result, or a status record): remember how they were
    made; with ``retry`` (a status caused by the environment) the next run makes them again."""
    fp = fingerprint(inputs)
    for out in outputs:
        if not os.path.exists(out):
            continue
        state = {
            "status": status,
            "finished": _now(),
            "inputs": fp,
            "output": _content(out),
            "rerun_failed": None,
            "retry": _new_retry(status) if retry else retry_token(out),
        }
        _write_state(out, state)


def _write_state(output, state: dict) -> None:
    """Write the state file atomically; on a full disk, in place when the new text fits in the
    disk blocks the file has already (a state file is a few hundred bytes in one block), so
    the note that makes the next run retry the job is written even then."""
    text = json.dumps(state, indent=1) + "\n"
    path = state_path(output)
    try:
        write_text(text, path)
    except EnvironmentFailure:
        data = text.encode()
        try:
            room = os.stat(path).st_blocks * 512
        except OSError:
            room = 0
        if len(data) > room:
            raise
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)


def keepable(outputs, inputs) -> bool:
    """True when every output is a good result made from these very input files (``inputs``
    None: from any, when an input is damaged and the job could not read it)."""
    fp = None if inputs is None else fingerprint(inputs)
    for out in outputs:
        state = read_state(out)
        if state is None or state.get("status") != "ok":
            return False
        if fp is not None and state.get("inputs") != fp:
            return False
        try:
            if state.get("output") != _content(out):
                return False  # replaced since (by hand, or by another tool)
        except OSError:
            return False
    return True


def note_failure(outputs, status: str, message: str, *, retry: bool = False) -> str:
    """Mark the kept outputs with the failed re-run; returns when the kept result was made.
    With ``retry`` (a failure caused by the environment) the next run tries again."""
    made = ""
    for out in outputs:
        state = read_state(out) or {}
        made = state.get("finished", "")
        state["rerun_failed"] = {"status": status, "message": message, "date": _now()}
        if retry:
            state["retry"] = _new_retry(status)
        _write_state(out, state)
    return made


def _new_retry(why: str) -> str:
    """A new, unique retry id (see the module's docstring)."""
    return f"{why} at {dt.datetime.now(dt.UTC).isoformat(timespec='microseconds')}"


def retry_token(output: str | os.PathLike) -> str:
    """The id of ``output``'s last failure caused by the environment, "" if none: the value of
    the ``retry`` parameter of the rule that makes it (see the module's docstring)."""
    state = read_state(output)
    return str(state.get("retry") or "") if state else ""


def note_retry(outputs, why: str) -> str | None:
    """After a failure caused by the environment (or a summary job's failure): make the next run
    retry the job that makes ``outputs``. Returns None, or why the note could not be written
    (the disk is still full: then only a changed input or ``--forcerun`` runs it again)."""
    token = _new_retry(why)
    for out in outputs:
        if not os.path.exists(out):
            continue  # nothing restored: Snakemake runs a missing output's job anyway
        state = read_state(out) or {}
        state["retry"] = token
        try:
            _write_state(out, state)
        except (OSError, ScdrbenchError) as err:
            return str(err)
    return None


def rerun_failure(output: str | os.PathLike) -> str | None:
    """One line for a kept result whose re-run failed, or None."""
    state = read_state(output)
    if not state or not state.get("rerun_failed"):
        return None
    failed = state["rerun_failed"]
    return (
        f"kept the result of {state.get('finished', '?')}: the re-run of {failed.get('date', '?')} "
        f"ended with {failed.get('message', failed.get('status', '?'))}"
    )


def rerun_failures(results: str | os.PathLike = "results") -> list[tuple[str, str]]:
    """Every kept result under ``results`` whose last re-run failed: (output, line)."""
    found = []
    root = Path(results)
    if not root.is_dir():
        return found
    for state in sorted(root.rglob(f".*{STATE_SUFFIX}")):
        output = state.parent / state.name[1 : -len(STATE_SUFFIX)]
        line = rerun_failure(output)
        if line and output.exists():
            found.append((str(output), line))
    return found
