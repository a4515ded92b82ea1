"""Run-time measurements and thread pinning shared by every job script."""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from contextlib import contextmanager

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)

#: TensorFlow's start-up chatter off (its C++ INFO/WARNING lines, oneDNN's notice: oneDNN custom
#: ops also vary results with the order of floating-point sums, against op determinism); its
#: C++ ERROR lines still print. A value the caller's environment sets wins.
TENSORFLOW_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def pin_threads(threads: int) -> None:
    """Pin every thread pool we know of to ``threads``.

    Environment variables only take effect for libraries not yet imported, so the job's shell
    command sets them too (see ``rules/common.smk``); this call covers pools created later
    (TensorFlow, numba) and threadpoolctl-managed BLAS already loaded.
    """
    threads = max(1, int(threads))
    numba_loaded = "numba" in sys.modules
    for var in THREAD_VARIABLES:
        if var == "NUMBA_NUM_THREADS" and numba_loaded:
            # numba re-reads its environment on every compile and refuses a thread count that
            # differs from the pool it already launched; numba.set_num_threads below caps it.
            continue
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    if numba_loaded:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def peak_rss_mb() -> float:
    """The kernel's high-water mark of this process's resident memory, in MB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Stopwatch:
    """Wall-clock timer: ``with Stopwatch() as sw: ...; sw.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


#: the log file of this job (set by :func:`setup_logging`; named by the console error line)
LOG_PATH: str | None = None
#: a log record with this attribute set goes to the log file only, not to the console
FILE_ONLY = "scdrbench_file_only"
#: bytes reserved for the log file when it is opened, so that its last lines (the error line
#: of a job stopped by a full disk) still fit when the file system fills up meanwhile
LOG_RESERVE = 64 * 1024


def reserve_space(fh, nbytes: int = LOG_RESERVE) -> None:
    """Reserve ``nbytes`` of disk blocks after the end of an open file without changing its
    size (Linux ``fallocate(FALLOC_FL_KEEP_SIZE)``); a no-op where that is not supported."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        offset = os.fstat(fh.fileno()).st_size
        libc.fallocate(fh.fileno(), 1, ctypes.c_long(offset), ctypes.c_long(nbytes))
    except (OSError, AttributeError, ValueError):
        pass


class LogFileHandler(logging.FileHandler):
    """The job's log file: space reserved when opened (:func:`reserve_space`), and a write
    that fails (a full disk) is remembered in :data:`LOG_FAILED`, never printed as Python's
    "--- Logging error ---" with a traceback; later records are still tried."""

    def _open(self):
        stream = super()._open()
        reserve_space(stream)
        return stream

    def handleError(self, record):
        global LOG_FAILED
        err = sys.exc_info()[1]
        if LOG_FAILED is None:
            LOG_FAILED = (
                os.strerror(err.errno) if isinstance(err, OSError) and err.errno else str(err)
            )


#: why the log file could not be written (None while it could)
LOG_FAILED: str | None = None


def log_note() -> str:
    """`` (log: <path>)`` for a console line, or says that the log could not be written."""
    if not LOG_PATH:
        return ""
    if LOG_FAILED:
        return f" (log: {LOG_PATH} could not be written: {LOG_FAILED})"
    return f" (log: {LOG_PATH})"


def _not_file_only(record) -> bool:
    return not getattr(record, FILE_ONLY, False)


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to ``log_path`` (appending) or stderr, with timestamps; with a log file, warnings
    also reach stderr (the console, or SLURM's output file) as "scdrbench warning: ..."."""
    global LOG_PATH, LOG_FAILED
    LOG_PATH = log_path
    LOG_FAILED = None
    stderr = logging.StreamHandler(sys.stderr)
    stderr.addFilter(_not_file_only)
    handlers: list[logging.Handler] = [stderr]
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("scdrbench warning: %(message)s"))
        console.addFilter(_not_file_only)
        try:
            handlers = [LogFileHandler(log_path), console]
        except OSError as err:  # cannot even open it: the console still gets every line
            LOG_FAILED = os.strerror(err.errno) if err.errno else str(err)
            handlers = [stderr]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("scdrbench")


@contextmanager
def blocked_imports(names):
    """Keep optional imports out: each of ``names`` not loaded yet is marked unimportable
    (``sys.modules[name] = None``) inside the block, so a library that imports it takes its
    ``ImportError`` fallback; a module loaded already (by another method in the same process) is
    left alone."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def import_umap_without_tensorflow() -> None:
    """Import umap-learn with TensorFlow kept out (``scanpy.pp.neighbors`` imports umap, and
    ``import umap`` imports TensorFlow for its ParametricUMAP: ~950 MB and 10-30 s a job)."""
    if "umap" in sys.modules:
        return
    import warnings

    with blocked_imports(("tensorflow",)), warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # noqa: F401


@contextmanager
def quiet_tensorflow():
    """Silence TensorFlow's C++ and Python start-up noise for the enclosed import/use."""
    for var, value in TENSORFLOW_QUIET.items():
        os.environ.setdefault(var, value)
    yield
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


#: The lock under which this machine's jobs compile numba code into a shared on-disk cache.
NUMBA_LOCK = "scdrbench-numba-{uid}.lock"


@contextmanager
def numba_compile_lock():
    """Hold this machine's lock (one per user, in the temporary directory) while the block
    compiles numba code with ``cache=True``. Two processes compiling the same gufunc at once
    can leave its kernel and its wrapper in the cache from different compilations, and the
    process that loads them aborts with ``LLVM ERROR: Symbol not found: __gufunc__...``
    (numba issue #10128, open): two scoring jobs importing ``dcor`` together on a fresh
    install. Under the lock the first compiles and writes the cache; the others then load it.
    Where the lock file cannot be opened, the block runs without it."""
    import fcntl
    import tempfile

    path = os.path.join(tempfile.gettempdir(), NUMBA_LOCK.format(uid=os.getuid()))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
