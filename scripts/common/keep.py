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
sha256], "rerun_failed": null | {"status", "message", "date"}}``. A later successful run
rewrites it (the note disappears). Snakemake records the re-run's parameters for the kept file,
so running again with the same configuration does nothing: the failure stays shown until the
configuration changes (or ``--forcerun``); ``rerun_failures`` lists every such note and the
plan banner prints them at each start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from scripts.common.io import write_text

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
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return [os.path.getsize(path), h.hexdigest()]


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


def record(outputs, inputs, status: str) -> None:
    """After a job wrote its outputs (a result, or a status record): remember how they were made."""
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
        }
        write_text(json.dumps(state, indent=1) + "\n", state_path(out))


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


def note_failure(outputs, status: str, message: str) -> str:
    """Mark the kept outputs with the failed re-run; returns when the kept result was made."""
    made = ""
    for out in outputs:
        state = read_state(out) or {}
        made = state.get("finished", "")
        state["rerun_failed"] = {"status": status, "message": message, "date": _now()}
        write_text(json.dumps(state, indent=1) + "\n", state_path(out))
    return made


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
