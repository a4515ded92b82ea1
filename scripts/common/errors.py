"""One exception type for bad input, so every entry point can print a clear one-line message."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps


class ScdrbenchError(Exception):
    """Bad input or configuration: the message names the file or key and the fix."""

    #: the process exit code when a CLI stops on this error
    exit_code = 1


class ConfigError(ScdrbenchError):
    """The configuration is invalid; the message names the key."""


def cli_errors(func: Callable) -> Callable:
    """Wrap a CLI ``main``: a :class:`ScdrbenchError` becomes one line on stderr and exit 1.

    Anything else is a bug and keeps its traceback.
    """

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ScdrbenchError as err:
            print(f"scdrbench error: {err}", file=sys.stderr)
            raise SystemExit(err.exit_code) from None

    return wrapper
