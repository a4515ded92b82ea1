"""A failed re-run keeps the last good result made from the same inputs (src/scdrbench/common/keep.py),
through the supervisor every embedding, scoring and stability job runs under."""

from __future__ import annotations

import argparse
import hashlib
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from scdrbench.common import keep
from scdrbench.common.supervise import add_budget_arguments, run_job

JOB = textwrap.dedent(
    """
    import argparse, sys
    from pathlib import Path
    p = argparse.ArgumentParser()
    p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--value")
    p.add_argument("--log"); p.add_argument("--time-budget-s", type=float)
    p.add_argument("--mem-budget-mb", type=float); p.add_argument("--child", action="store_true")
    a = p.parse_args()
    if a.value == "bad":
        print("scdrbench error: value 'bad' is not allowed", file=sys.stderr)
        sys.exit(1)
    if Path(a.input).read_text().startswith("CUT"):
        from scdrbench.common.errors import DamagedInputError
        print(f"scdrbench error: input {a.input} is cut; rebuild it", file=sys.stderr)
        sys.exit(DamagedInputError.exit_code)
    if a.value == "hang":  # says it started, then works until a signal stops it
        import os, time
        Path(a.input).with_name("child.pid").write_text(str(os.getpid()))
        while True:
            time.sleep(0.1)
    Path(a.output).write_text(Path(a.input).read_text() + a.value)
    """
)
# The job's supervisor as its own process (the parent Snakemake or scancel signals).
DRIVER = textwrap.dedent(
    """
    import argparse, sys
    from pathlib import Path
    from scdrbench.common.supervise import add_budget_arguments, run_job
    inp, out, log, value = sys.argv[1:]
    argv = ["--input", inp, "--output", out, "--value", value, "--log", log]
    p = argparse.ArgumentParser()
    for name in ("--input", "--output", "--value", "--log"):
        p.add_argument(name)
    add_budget_arguments(p)
    def record(outcome, budget):
        Path(out).write_text(f"STATUS {outcome.status}: {outcome.message}")
    run_job("fakejob", argv, p.parse_args(argv), child=None, record=record, what="job",
            outputs=[Path(out)], inputs=[Path(inp)])
    """
)


@pytest.fixture
def job(tmp_path, monkeypatch):
    (tmp_path / "fakejob.py").write_text(JOB)
    monkeypatch.chdir(tmp_path)  # the child runs `python -m fakejob` from here
    inp, out, log = tmp_path / "in.txt", tmp_path / "out" / "res.txt", tmp_path / "job.log"
    inp.write_text("input:")
    out.parent.mkdir()

    def run(value):
        argv = ["--input", str(inp), "--output", str(out), "--value", value, "--log", str(log)]
        p = argparse.ArgumentParser()
        for name in ("--input", "--output", "--value", "--log"):
            p.add_argument(name)
        add_budget_arguments(p)
        args = p.parse_args(argv)

        def record(outcome, budget):
            out.write_text(f"STATUS {outcome.status}: {outcome.message}")

        run_job(
            "fakejob", argv, args, child=None, record=record, what="job",
            outputs=[out], inputs=[inp],
        )  # fmt: skip

    return run, inp, out, log


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failed_rerun_keeps_the_good_result_and_notes_why(job, capsys):
    run, inp, out, log = job
    run("1")
    assert out.read_text() == "input:1"
    assert keep.read_state(out)["status"] == "ok"
    before = sha(out)
    run("bad")
    assert sha(out) == before
    err = capsys.readouterr().err
    assert "job: error: value 'bad' is not allowed; kept the previous result" in err
    assert "kept the previous result" in log.read_text()
    line = keep.rerun_failure(out)
    assert line.startswith("kept the result of ") and "value 'bad' is not allowed" in line
    assert keep.rerun_failures(out.parent.parent) == [(str(out), line)]
    # a later success clears the note
    run("2")
    assert out.read_text() == "input:2"
    assert keep.rerun_failure(out) is None


def test_a_result_of_other_inputs_is_not_kept(job):
    run, inp, out, log = job
    run("1")
    inp.write_text("other input:")  # e.g. PCs re-made with other cells
    run("bad")
    assert out.read_text().startswith("STATUS error: error: value 'bad'")
    assert keep.read_state(out)["status"] == "error"
    assert keep.rerun_failure(out) is None


def test_a_damaged_input_keeps_the_good_result_until_it_is_rebuilt(job, capsys):
    run, inp, out, log = job
    run("1")
    before = sha(out)
    inp.write_text("CUT")  # an input cut since: it changed, but nothing can be made of it
    run("1")
    assert sha(out) == before
    assert "is cut; rebuild it; kept the previous result (made " in capsys.readouterr().err
    assert "input " in keep.rerun_failure(out) and "is cut" in keep.rerun_failure(out)
    inp.write_text("input again:")  # rebuilt
    run("1")
    assert out.read_text() == "input again:1" and keep.rerun_failure(out) is None


def test_a_damaged_input_without_a_good_result_is_recorded(job):
    run, inp, out, log = job
    inp.write_text("CUT")
    run("1")
    assert out.read_text().startswith("STATUS error: error: input ")
    assert keep.read_state(out)["status"] == "error"


def test_a_status_record_or_a_replaced_file_is_not_kept(job):
    run, inp, out, log = job
    run("bad")  # first run fails: its status record
    assert out.read_text().startswith("STATUS error")
    run("bad")  # nothing good to keep
    assert keep.rerun_failure(out) is None
    run("1")
    out.write_text("edited by hand")
    run("bad")
    assert out.read_text().startswith("STATUS error")


def test_state_files_are_hidden_beside_their_output(tmp_path):
    out = tmp_path / "res.h5ad"
    out.write_bytes(b"x")
    keep.record([out], [], "ok")
    assert keep.state_path(out) == tmp_path / ".res.h5ad.state.json"
    assert keep.keepable([out], [])
    keep.state_path(out).write_text("{not json")
    assert keep.read_state(out) is None and not keep.keepable([out], [])


@pytest.mark.skipif(sys.platform != "linux", reason="process groups as on the cluster nodes")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_job_writes_nothing(job, tmp_path, sig):
    run, inp, out, log = job
    run("1")
    before, state = sha(out), keep.read_state(out)
    (tmp_path / "driver.py").write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(inp), str(out), str(log), "hang"],
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "child.pid"
    while not pid_file.exists() or not pid_file.read_text():  # the child is at work
        assert driver.poll() is None, driver.stderr.read()
        time.sleep(0.05)
    child = int(pid_file.read_text())
    driver.send_signal(sig)  # a real signal to the supervisor, as Snakemake or scancel sends
    err = driver.communicate(timeout=120)[1]
    assert driver.returncode != 0
    # the signal reached the child's process group: it is gone, not left working
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
    assert sha(out) == before  # nothing written
    # the state is the same but for the note that makes the next plain run retry the job
    after = keep.read_state(out)
    assert after["retry"].startswith("interrupted") and after["retry"] != state["retry"]
    assert {**after, "retry": state["retry"]} == state
    assert keep.rerun_failure(out) is None
    assert "recorded as its status" not in err and "kept the previous result" not in err
    assert f"job ended with status interrupted: interrupted (signal {int(sig)})" in log.read_text()
