"""One exception type for bad input, so every entry point can print a clear one-line message."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps


class ScdrbenchError(Exception):
    """Bad input or configuration: the message names the file or key and the fix."""

    #: the process exit code when a CLI stops on this error
    exit_code = 1


class DamagedInputError(ScdrbenchError):
    """An input results file is missing, cut or unreadable: the message names it and the command
    that rebuilds it. Its exit code tells the supervisor (:func:`scripts.common.supervise.run_job`)
    to keep the job's previous good output rather than record the failure over it."""

    exit_code = 4


class ConfigError(ScdrbenchError):
    """The configuration is invalid; the message names the key."""


def cli_errors(func: Callable) -> Callable:
    """Wrap a CLI ``main``: a :class:`ScdrbenchError` becomes one line on stderr and exit 1.

    The same line goes into the job's log file (the one ``setup_logging`` opened), and the
    console line names that file. Anything else is a bug: its traceback goes into the log file
    too, and stays on the console.
    """
    import logging

    @wraps(func)
    def wrapper(*args, **kwargs):
        from scripts.common import runtime

        logger = logging.getLogger("scdrbench")
        try:
            return func(*args, **kwargs)
        except ScdrbenchError as err:
            logger.error("scdrbench error: %s", err)
            where = f" (log: {runtime.LOG_PATH})" if runtime.LOG_PATH else ""
            print(f"scdrbench error: {err}{where}", file=sys.stderr)
            raise SystemExit(err.exit_code) from None
        except Exception:
            logger.exception("unexpected error (a bug: please report it with this log)")
            raise

    return wrapper
