"""A library's progress lines (``print`` to stdout) into the job's log, not onto the console."""

from __future__ import annotations

import contextlib
import io
import logging
import resource


def peak_rss_mb() -> float:
    """This process's peak resident set so far (the kernel's high-water mark), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _LinesToLog(io.TextIOBase):
    """A text stream that hands each complete line to ``log`` at INFO, with the peak RSS so far
    (so the log of a job stopped by its memory budget says which step raised it)."""

    def __init__(self, log: logging.Logger, prefix: str):
        self._log, self._prefix, self._pending = log, prefix, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        pass

    def close_pending(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""

    def _emit(self, line: str) -> None:
        line = " ".join(line.split())  # umap-learn's tab-and-space padding
        if line:
            self._log.info(
                "%s: %s (peak RSS so far %s MB)", self._prefix, line, f"{peak_rss_mb():,.0f}"
            )


@contextlib.contextmanager
def stdout_to_job_log(log: logging.Logger, prefix: str):
    """Within the block, what the library prints to ``sys.stdout`` (umap-learn's and
    pynndescent's ``verbose`` steps, numba's ``print`` too, which goes through Python's
    stdout) reaches the job's log line by line as it is printed, not the console."""
    stream = _LinesToLog(log, prefix)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        stream.close_pending()
