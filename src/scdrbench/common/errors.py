"""One exception type for bad input, so every entry point can print a clear one-line message."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from functools import wraps


class ScdrbenchError(Exception):
    """Bad input or configuration: the message names the file or key and the fix."""

    #: the process exit code when a CLI stops on this error
    exit_code = 1


class DamagedInputError(ScdrbenchError):
    """An input results file is missing, cut or unreadable: the message names it and the command
    that rebuilds it. Its exit code tells the supervisor (:func:`scdrbench.common.supervise.run_job`)
    to keep the job's previous good output rather than record the failure over it."""

    exit_code = 4


class ConfigError(ScdrbenchError):
    """The configuration is invalid; the message names the key."""


#: Exit code of a job stopped by its environment (EX_TEMPFAIL of sysexits.h: "try again later").
EXIT_ENVIRONMENT = 75

#: Operating-system errors that come from the machine, not from the job's inputs: the same job
#: succeeds once space, permissions or limits are back, so the next run retries it.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "free space there (df -h {folder}) and run again",
    errno.EDQUOT: "free space within your quota there (quota -s) and run again",
    errno.EACCES: "make {folder} writable for you (ls -ld {folder}) and run again",
    errno.EPERM: "make {folder} writable for you (ls -ld {folder}) and run again",
    errno.EROFS: (
        "{folder} is on a read-only file system: remount it writable, or run in a writable "
        "copy with --directory <folder>"
    ),
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and run again",
    errno.ENFILE: "the system's open-file table is full: close other programs and run again",
    errno.EIO: "an input/output error of the device: check the disk (dmesg) and run again",
}


class EnvironmentFailure(ScdrbenchError):
    """The machine stopped the job (no space, permission, read-only, too many open files):
    retried on the next run (:mod:`scdrbench.common.keep`)."""

    exit_code = EXIT_ENVIRONMENT


def os_error_message(err: OSError, path=None, action: str = "write") -> str | None:
    """One line for an operating-system error of the environment, naming the path and the
    system's message, or None for another error (a bug or a bad input file)."""
    code = err.errno
    if code is None:  # HDF5 reports the system's errno inside its message
        import re

        found = re.search(r"errno = (\d+)", str(err))
        code = int(found.group(1)) if found else None
    if code not in ENVIRONMENT_ERRNOS:
        return None
    path = os.fspath(path if path is not None else (err.filename or "?"))
    folder = os.path.dirname(os.path.abspath(path)) if path != "?" else "the results folder"
    name = errno.errorcode.get(code, str(code))
    fix = ENVIRONMENT_ERRNOS[code].format(folder=folder)
    return f"cannot {action} {path}: {os.strerror(code)} ({name}); {fix}"


def environment_failure(err: OSError, path=None, action="write") -> EnvironmentFailure | None:
    """The :class:`EnvironmentFailure` of ``err`` (None when the machine is not the cause)."""
    message = os_error_message(err, path, action)
    return EnvironmentFailure(message) if message else None


def cli_errors(func: Callable) -> Callable:
    """Wrap a CLI ``main``: a :class:`ScdrbenchError`, or an operating-system error of the
    environment (no space, permission, read-only, too many open files), becomes one line on
    stderr, once, and exit 1 (75 for the environment: the next run retries the job).

    The same line goes into the job's log file (the one ``setup_logging`` opened), and the
    console line names that file (or says it could not be written). Anything else is a bug: its
    traceback goes into the log file too, and stays on the console.
    """
    import logging

    @wraps(func)
    def wrapper(*args, **kwargs):
        from scdrbench.common import runtime

        logger = logging.getLogger("scdrbench")
        try:
            return func(*args, **kwargs)
        except (ScdrbenchError, OSError) as err:
            if isinstance(err, OSError):
                err = environment_failure(err, action="open")
                if err is None:
                    _log_bug(logger, runtime)
                    raise
            # the log file only: the console gets the line below, once
            logger.error("scdrbench error: %s", err, extra={runtime.FILE_ONLY: True})
            print(f"scdrbench error: {err}{runtime.log_note()}", file=sys.stderr)
            raise SystemExit(err.exit_code) from None
        except Exception:
            _log_bug(logger, runtime)
            raise

    return wrapper


def _log_bug(logger, runtime) -> None:
    """A bug's traceback into the log file (Python prints it on the console as it ends)."""
    logger.exception(
        "unexpected error (a bug: please report it with this log)", extra={runtime.FILE_ONLY: True}
    )
