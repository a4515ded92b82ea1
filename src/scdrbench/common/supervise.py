"""Run a job's work in a child process within its budget, and say how it ended.

Longer than 400 lines on purpose: starting, watching, stopping and classifying the child share
its process group, its signals and its log, and are read together.

Every embedding and scoring job runs its own module twice: the parent (this supervisor, light:
no numerical library is imported) starts the same command with ``--child`` in a new process
group, copies the child's stderr into the job's log file and to its own stderr (the console, or
SLURM's output file), samples the resident memory of the child's whole process tree every
``poll_s`` seconds, and

- at the time budget sends SIGTERM to the group, then SIGKILL 10 s later: status ``timeout``;
- above the memory budget sends SIGKILL: status ``out_of_memory`` (a child killed by the kernel's
  or the cgroup's out-of-memory killer, exit -9/137, gets the same status);
- on exit code 3 (the memory guard: the method's memory model exceeds the allocation before
  fitting): status ``skipped``; a caller without a memory budget passes exit 3 on instead, so
  that Snakemake resubmits the job with more memory;
- on any other non-zero exit: status ``error`` with the child's one-line message (the line after
  ``scdrbench error:``, else the last line of its traceback);
- on exit code 75 (:data:`~scdrbench.common.errors.EXIT_ENVIRONMENT`: no space, no permission, a
  read-only file system, too many open files): status ``error`` with the child's one line,
  marked as caused by the environment, so that the next run retries the job
  (:func:`scdrbench.common.keep.note_retry`); so are an interruption and the kernel's
  out-of-memory killer;
- when the supervisor itself is interrupted (Ctrl-C, scancel): status ``interrupted``, and the
  caller exits non-zero without writing anything (Snakemake restores the previous output, flagged update()).

Each line is said once: the child writes its warnings and its ``scdrbench error:`` line into
the log itself (:func:`scdrbench.common.runtime.setup_logging`), so the supervisor copies every
other line of the child's stderr into the log, passes its warnings to the console, and prints
the job's one line in place of the child's error line. A log file that cannot be written (a
full disk) never stops the supervisor: the console line says so.

The caller then keeps its previous good result (:mod:`scdrbench.common.keep`) or writes its
output as a status record (see ``scdrbench.stages.embed`` and ``scdrbench.metrics``), so the workflow goes
on and the tables show the failure.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from scdrbench.common.budget import Budget, status_message
from scdrbench.common.errors import EXIT_ENVIRONMENT, DamagedInputError, ScdrbenchError

#: Exit code of a child stopped by the memory guard (its estimate exceeds the allocation):
#: passed on as a failure, so that Snakemake resubmits the job with more memory.
EXIT_MEMORY_GUARD = 3
#: Known-harmless lines TensorFlow's C++ prints whatever TF_CPP_MIN_LOG_LEVEL says: absl's
#: preamble before its first message, and tf.data's ERROR-level note on an attribute missing
#: from its op registry (every parametric UMAP fit with TensorFlow 2.21; the fit is unaffected).
#: They go to the log, not to the console; every other line, TensorFlow's real errors among
#: them, goes to both.
CONSOLE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|E\d{4} \S+\s+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute "
    r"use_unbounded_threadpool which is not in the op definition"
)


@dataclass
class Outcome:
    """How the child ended."""

    status: str
    message: str
    returncode: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stderr_tail: list[str] = field(default_factory=list)
    #: caused by the environment (no space, a signal, the kernel's OOM killer): retried next run
    environment: bool = False


class JobLog:
    """The job's log file as the supervisor appends to it (unbuffered, space reserved): a write
    that fails (a full disk) is remembered in ``failed``, never raised."""

    def __init__(self, path: str | None):
        from scdrbench.common.runtime import reserve_space

        self.path, self.failed, self.fd = path, None, None
        if not path:
            return
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            with os.fdopen(os.dup(self.fd), "ab") as fh:
                reserve_space(fh)
        except OSError as err:
            self.failed = os.strerror(err.errno) if err.errno else str(err)

    def write(self, text: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, text.encode(errors="replace"))
        except OSError as err:
            self.failed = self.failed or (os.strerror(err.errno) if err.errno else str(err))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def note(self) -> str:
        """`` (log: <path>)`` for a console line, or that the log could not be written."""
        if not self.path:
            return " (log: stderr)"
        if self.failed:
            return f" (log: {self.path} could not be written: {self.failed})"
        return f" (log: {self.path})"


def _tree_rss_mb(proc) -> float:
    import psutil

    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def one_line(lines: list[str]) -> str:
    """The child's message: its ``scdrbench error:`` line, else its last non-empty line."""
    import re

    for line in reversed(lines):
        if line.startswith("scdrbench error:"):
            message = line.removeprefix("scdrbench error:").strip()
            return re.sub(r" \(log: [^)]*\)$", "", message)
    for line in reversed(lines):
        if line.strip():
            return line.strip()[:400]
    return "no message (see the log file)"


def _die_with_parent() -> None:
    """In the child: be killed when the supervisor dies, even by SIGKILL (Linux prctl), so a
    killed job leaves no orphan that could still write its output; and take SIGINT and SIGTERM
    as a plain process does, even where the supervisor was started with them ignored (a shell's
    background job ignores SIGINT), so that a forwarded signal stops the child."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's own handlers still apply
        pass


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _restore(handlers: dict) -> None:
    """Put back the signal handlers :func:`_start_forwarding_signals` replaced."""
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _start_forwarding_signals(cmd: list[str]):
    """Start the child, forwarding a SIGTERM/SIGINT sent to the job (Snakemake interrupted,
    scancel) to its process group: ``(child, signals received, the handlers to restore)``. The
    handlers are in place before the child starts, so that a signal in between is not lost (a
    shell's background job starts with SIGINT ignored) but reaches the child once it exists."""
    interrupted: list[int] = []
    started_child: list[subprocess.Popen] = []

    def forward(signum, frame):
        interrupted.append(signum)
        if started_child:
            _kill_group(started_child[0].pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        child = subprocess.Popen(
            cmd,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except BaseException:
        _restore(previous)
        raise
    started_child.append(child)
    if interrupted:
        _kill_group(child.pid, interrupted[0])
    return child, interrupted, previous


def supervise(
    cmd: list[str],
    *,
    budget: Budget,
    log_path: str | None = None,
    poll_s: float = 0.5,
    grace_s: float = 10.0,
) -> Outcome:
    """Run ``cmd`` within ``budget``; returns the :class:`Outcome` (never raises for the child)."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child, interrupted, previous = _start_forwarding_signals(cmd)
    tail: deque[str] = deque(maxlen=200)
    try:
        log = JobLog(log_path)
    except BaseException:
        _kill_group(child.pid, signal.SIGKILL)
        _restore(previous)
        raise

    def pump():
        for line in child.stderr:
            tail.append(line.rstrip("\n"))
            # the child logged its warnings and its error line itself; its error line is said
            # once, by the caller's line for the job; TensorFlow's known-harmless lines go to
            # the log only
            if not line.startswith("scdrbench error:") and not CONSOLE_NOISE.match(line):
                sys.stderr.write(line)
                sys.stderr.flush()
            if not line.startswith(("scdrbench error:", "scdrbench warning:")):
                log.write(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        peak, killed_for = _watch(child, budget, interrupted, started, poll_s, grace_s)
    finally:
        _restore(previous)
    reader.join(timeout=5)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = max(peak, after.ru_maxrss / 1024.0)
    seconds = time.perf_counter() - started
    rc = child.returncode
    lines = list(tail)
    status, detail, environment = _classify(interrupted, killed_for, rc, lines)
    message = status_message(status, budget, detail)
    if status != "ok":
        # an error's message is the child's own line, in the log already: not twice
        said = "" if status in ("error", "skipped") else f": {message}"
        log.write(
            f"scdrbench: job ended with status {status}{said} "
            f"(exit {rc}, {seconds:.1f} s, peak {peak:.0f} MB)\n"
        )
    log.close()
    return Outcome(status, message, rc, seconds, cpu, peak, lines[-30:], environment)


def _watch(child, budget: Budget, interrupted: list, started: float, poll_s, grace_s):
    """Poll the running child until it ends: ``(peak RSS in MB of its process tree, what it
    was killed for or None)``. Over the memory budget: SIGKILL; over the time budget: SIGTERM,
    SIGKILL after ``grace_s``; a forwarded interrupt: SIGKILL after ``grace_s``."""
    import psutil

    ps = psutil.Process(child.pid)
    peak = 0.0
    killed_for = None
    while child.poll() is None:
        time.sleep(poll_s)
        if interrupted and killed_for is None:
            # forwarded once; a child that does not stop within the grace is killed
            killed_for = "interrupted"
            try:
                child.wait(grace_s)
            except subprocess.TimeoutExpired:
                _kill_group(child.pid, signal.SIGKILL)
            continue
        rss = _tree_rss_mb(ps)
        peak = max(peak, rss)
        elapsed = time.perf_counter() - started
        if budget.mem_mb is not None and rss > budget.mem_mb and killed_for is None:
            killed_for = "out_of_memory"
            _kill_group(child.pid, signal.SIGKILL)
        elif budget.time_s is not None and elapsed > budget.time_s and killed_for is None:
            killed_for = "timeout"
            _kill_group(child.pid, signal.SIGTERM)
            try:
                child.wait(grace_s)
            except subprocess.TimeoutExpired:
                _kill_group(child.pid, signal.SIGKILL)
    child.wait()
    return peak, killed_for


def _classify(interrupted: list, killed_for, rc: int, lines: list[str]):
    """How the child ended: ``(status, detail, environment)``; ``environment`` when the cause
    is outside the job (an interrupt, the kernel's out-of-memory killer, a full disk)."""
    if interrupted:
        return "interrupted", f"signal {interrupted[0]}", True
    if killed_for == "timeout":
        return "timeout", "", False
    if killed_for == "out_of_memory" or rc in (-signal.SIGKILL, 137):
        detail = "" if killed_for else "killed by SIGKILL, most likely the out-of-memory killer"
        return "out_of_memory", detail, killed_for is None
    if rc == EXIT_ENVIRONMENT:
        return "error", one_line(lines), True
    if rc == 0:
        return "ok", "", False
    if rc == EXIT_MEMORY_GUARD:
        return "skipped", one_line(lines), False
    return "error", one_line(lines), False


def child_command(module: str, argv: list[str]) -> list[str]:
    """The child's command line: the same module and arguments, plus ``--child``."""
    return [sys.executable, "-m", module, *argv, "--child"]


def add_budget_arguments(parser) -> None:
    """The arguments every supervised job takes: its budget and ``--child``."""
    parser.add_argument("--time-budget-s", type=float, default=None, help="0: no time limit")
    parser.add_argument("--mem-budget-mb", type=float, default=None, help="0: no memory limit")
    parser.add_argument("--child", action="store_true", help="run the work (else: supervise it)")


def run_job(
    module: str,
    argv: list[str],
    args,
    *,
    child,
    record,
    what: str,
    outputs=(),
    inputs=(),
    guard_retries: bool = False,
) -> None:
    """A job's command line: run ``child(args)`` under supervision, or as the child itself.

    ``args`` are the parsed ``argv`` (with :func:`add_budget_arguments`). When the child ends
    with another status than ``ok``: if ``outputs`` hold a good result made from the same
    ``inputs`` (:mod:`scdrbench.common.keep`; from any, when the child could not read an input:
    exit code of :class:`~scdrbench.common.errors.DamagedInputError`), they stay as they are and
    the failed re-run is noted beside them; else ``record(outcome, budget)`` writes them as a status record. One line
    names the status and the log either way. An interrupted job exits non-zero without writing
    anything. With ``guard_retries`` and no memory budget, a memory-guard stop exits 3 instead,
    so that Snakemake resubmits the job with more memory.
    """
    from scdrbench.common import keep

    if args.child:
        return child(args)
    budget = Budget(time_s=args.time_budget_s or None, mem_mb=args.mem_budget_mb or None)
    outcome = supervise(child_command(module, argv), budget=budget, log_path=args.log)
    log = JobLog(args.log)
    try:
        line, code = _conclude(outcome, budget, keep, record, outputs, inputs, guard_retries, what)
    except ScdrbenchError as err:  # the job's own files cannot be written (a full disk)
        line, code = f"scdrbench error: {what}: {err}", err.exit_code
        if outcome.status != "ok":
            keep.note_retry(outputs, outcome.status)
            also = "" if str(err) in outcome.message else f" ({err})"
            again = ", the next run retries it" if outcome.environment else ""
            line = f"scdrbench error: {what}: {outcome.message}; nothing written{also}{again}"
    if line:
        # the log has the child's message already: there, the line says what became of the job
        log.write(line.replace(f": {outcome.message}; ", ": ", 1) + "\n")
        print(line + log.note(), file=sys.stderr)
    log.close()
    if code:
        raise SystemExit(code)
    return None


def _conclude(outcome, budget, keep, record, outputs, inputs, guard_retries, what):
    """What the supervisor does after the child ended: ``(line, exit code)``."""
    if outcome.status == "ok":
        try:
            keep.record(outputs, inputs, "ok")
        except ScdrbenchError as err:  # the result is whole: keep it (it is not kept on a re-run)
            return f"scdrbench warning: {what}: the result is complete; its state: {err}", 0
        return None, 0
    guarded = guard_retries and outcome.status == "skipped" and budget.mem_mb is None
    code = outcome.returncode if outcome.returncode > 0 else 1
    if outcome.status == "interrupted":
        keep.note_retry(outputs, outcome.status)
        return None, code
    if guarded:
        return f"scdrbench error: {what}: {outcome.message}", code
    again = ", the next run retries it" if outcome.environment else ""
    prefix = "scdrbench error" if outcome.environment else "scdrbench"
    # an input it could not read (cut, missing): its previous good result stays, whatever the
    # inputs it was made from, until the input is rebuilt
    damaged = outcome.returncode == DamagedInputError.exit_code
    if outputs and keep.keepable(outputs, None if damaged else inputs):
        made = keep.note_failure(
            outputs, outcome.status, outcome.message, retry=outcome.environment
        )
        return (
            f"{prefix}: {what}: {outcome.message}; kept the previous result (made {made}), "
            f"the tables mark it{again}",
            0,
        )
    record(outcome, budget)
    keep.record(outputs, inputs, outcome.status, retry=outcome.environment)
    return f"{prefix}: {what}: {outcome.message}; recorded as its status{again}", 0
