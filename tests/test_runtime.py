"""Thread pinning and in-script measurements shared by every job script."""

import subprocess
import sys
import textwrap
from pathlib import Path

from scdrbench.common.runtime import THREAD_VARIABLES, Stopwatch, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_pin_threads_sets_every_pool_variable():
    stdout = _run(
        """
        import os
        from scdrbench.common.runtime import THREAD_VARIABLES, pin_threads
        pin_threads(3)
        print(",".join(os.environ[v] for v in THREAD_VARIABLES))
        print(os.environ["TF_NUM_INTEROP_THREADS"])
        """
    )
    lines = stdout.split()
    assert lines[0].split(",") == ["3"] * len(THREAD_VARIABLES)
    assert lines[1] == "1"


def test_pin_threads_twice_after_numba_launched_its_pool():
    """A second job in one process (as in the test suite) must not break numba's next compile."""
    stdout = _run(
        """
        import numpy as np
        from scdrbench.common.runtime import pin_threads
        pin_threads(1)
        import numba

        @numba.njit(parallel=True)
        def total(x):
            s = 0.0
            for i in numba.prange(x.shape[0]):
                s += x[i]
            return s

        total(np.ones(10))          # launches numba's pool with one thread
        pin_threads(2)

        @numba.njit
        def twice(x):
            return 2 * x

        print(twice(2.0), numba.get_num_threads())
        """
    )
    value, threads = stdout.split()
    assert float(value) == 4.0
    assert int(threads) == 1


def test_stopwatch_and_peak_rss():
    with Stopwatch() as sw:
        block = bytearray(50 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
    assert sw.seconds > 0
    assert peak_rss_mb() >= 50


def test_numba_compile_lock_makes_another_process_wait_until_it_is_released(tmp_path, monkeypatch):
    """Two jobs compiling numba code into the shared cache take turns (numba issue #10128:
    two scoring jobs importing dcor together aborted with LLVM's "Symbol not found")."""
    import os
    import tempfile
    import time

    from scdrbench.common.runtime import numba_compile_lock

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = "from scdrbench.common.runtime import numba_compile_lock as lock\n"
    code += "print('ready', flush=True)\n"
    code += "with lock(): print('inside', flush=True)\n"
    env = dict(os.environ, TMPDIR=str(tmp_path))
    with numba_compile_lock():
        other = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert other.stdout.readline() == "ready\n"
        time.sleep(1)  # ample time to take a free lock
        assert other.poll() is None  # still waiting
        assert list(tmp_path.glob("scdrbench-numba-*.lock"))
    out, _ = other.communicate(timeout=60)
    assert (other.returncode, out) == (0, "inside\n")  # it went on once the lock was free


def test_numba_compile_lock_without_a_writable_temporary_directory_runs_the_block(
    tmp_path, monkeypatch
):
    import tempfile

    from scdrbench.common.runtime import numba_compile_lock

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    ran = []
    with numba_compile_lock():
        ran.append(True)
    assert ran == [True]
