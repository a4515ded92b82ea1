"""The workflow on a real single-node SLURM through a profile (issue 6).

Opt-in (marker ``slurm``): needs root and Debian's slurm-wlm packages (installed by
tests/slurm/start-local-slurm.sh through apt-get when missing). Starts munged, MariaDB,
slurmdbd, slurmctld and slurmd; stops the daemons it started when the session ends.

Run: ``.venv/bin/python -m pytest -q -s -m slurm tests/test_slurm.py`` (about 3.5 minutes
with the packages installed; the first time apt-get adds about 30 s).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from scdrbench.common.memory import _slurm_mb
from tests.conftest import ROOT

pytestmark = pytest.mark.slurm

HERE = ROOT / "tests" / "slurm"
START, STOP = HERE / "start-local-slurm.sh", HERE / "stop-local-slurm.sh"
PROFILE = HERE / "profile"
CONFIG = HERE / "config.yaml"
TARGET = "results/tables/timing.tsv"
ACCOUNT, USER = "test", "root"
PIDFILES = ["/run/slurmd.pid", "/run/slurmctld.pid", "/run/slurmdbd.pid"]
# Compared with a local run of the same config: the same coordinates wherever they run.
DETERMINISTIC = ["random", "pca", "ae_keras"]
# embed_python gets 250 MB x 2^(attempt-1) in the test profile; t-SNE's estimate is ~300 MB.
GUARDED = "tsne"


def _skip_reason() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to install and start a local SLURM (tests/slurm/)"
    have_slurm = all(shutil.which(c) for c in ("slurmctld", "slurmd", "sbatch", "sacct"))
    if not have_slurm and not (shutil.which("apt-get") and shutil.which("dpkg-query")):
        return "SLURM is not installed and apt-get is not available to install it"
    return None


def _alive(pidfile: str) -> bool:
    try:
        os.kill(int(Path(pidfile).read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def _env() -> dict:
    env = dict(os.environ)
    # The plugin re-runs snakemake inside each job: the venv's snakemake must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running local cluster; stopped at the end unless it was already running."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    was_running = all(_alive(p) for p in PIDFILES)
    start = time.perf_counter()
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        subprocess.run(["bash", str(STOP)], capture_output=True, timeout=120)
        pytest.fail(f"start-local-slurm.sh failed:\n{proc.stdout}\n{proc.stderr[-4000:]}")
    print(f"\nlocal SLURM ready in {time.perf_counter() - start:.1f} s")
    try:
        yield
    finally:
        if not was_running:
            subprocess.run(["bash", str(STOP)], capture_output=True, timeout=180)


def snakemake(*args, directory: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--workflow-profile",
        "none",
        "--configfile",
        str(CONFIG),
        "--directory",
        str(directory),
        *args,
    ]
    return subprocess.run(
        cmd, cwd=directory, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def parse_submissions(log: str) -> tuple[str, list[dict]]:
    """The run UUID and, per sbatch, the rule, wildcards and resources Snakemake asked for."""
    run_uuid = re.search(r"SLURM run ID: (\S+)", log).group(1)
    blocks: dict[str, dict] = {}
    current: dict = {}
    submissions = []
    for line in log.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line.strip()):
            current = {"rule": m.group(1), "wildcards": ""}
        elif m := re.match(r"jobid: (\d+)$", line.strip()):
            current["jobid"] = m.group(1)
            blocks[m.group(1)] = current
        elif line.strip().startswith("wildcards: "):
            current["wildcards"] = line.strip()[len("wildcards: ") :]
        elif line.strip().startswith("resources: "):
            current["resources"] = dict(
                kv.split("=", 1) for kv in line.strip()[len("resources: ") :].split(", ")
            )
        elif m := re.match(r"Job (\d+) has been submitted with SLURM jobid (\d+)", line):
            submissions.append(dict(blocks[m.group(1)], slurm_id=m.group(2)))
    return run_uuid, submissions


def sacct(ids: list[str]) -> pd.DataFrame:
    fields = "JobID,JobName,State,AllocCPUS,ReqMem,Timelimit,ExitCode,Elapsed,Comment"
    out = subprocess.run(
        ["sacct", "-P", "-n", "-X", f"--format={fields}", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("|") for line in out.strip().splitlines()]
    return pd.DataFrame(rows, columns=fields.split(",")).set_index("JobID")


def slurm_minutes(limit: str) -> int:
    """sacct's Timelimit ([D-]HH:MM:SS) in minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return (int(days) if days else 0) * 1440 + h * 60 + m + (1 if s else 0)


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The test config through SLURM (test profile) and, at the same time, locally."""
    slurm_dir = tmp_path_factory.mktemp("slurm_run")
    local_dir = tmp_path_factory.mktemp("local_run")
    local: dict = {}

    def run_local():
        local["proc"] = snakemake("--cores", "2", TARGET, directory=local_dir)

    thread = threading.Thread(target=run_local)
    thread.start()
    start = time.perf_counter()
    proc = snakemake("--profile", str(PROFILE), TARGET, directory=slurm_dir)
    wall = time.perf_counter() - start
    thread.join()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"SLURM run failed:\n{log[-8000:]}"
    assert local["proc"].returncode == 0, local["proc"].stderr[-8000:]
    run_uuid, subs = parse_submissions(log)
    table = sacct([s["slurm_id"] for s in subs])
    print(f"\nSLURM run: {wall:.0f} s wall, {len(subs)} SLURM jobs (run {run_uuid})")
    print(table.to_string())
    return {
        "slurm": slurm_dir,
        "local": local_dir,
        "log": log,
        "uuid": run_uuid,
        "subs": subs,
        "sacct": table,
    }


def test_each_rule_ran_as_a_slurm_job_with_its_resources(runs):
    subs, table = runs["subs"], runs["sacct"]
    rules = {s["rule"] for s in subs}
    assert rules == {
        "prepare_dataset",
        "preprocess",
        "embed_python",
        "embed_tensorflow",
        "timing_table",
    }
    cfg = yaml.safe_load(CONFIG.read_text())
    for s in subs:
        row = table.loc[s["slurm_id"]]
        res = s["resources"]
        assert row.JobName == runs["uuid"]
        assert row.Comment.startswith(f"rule_{s['rule']}"), row.Comment
        # threads and cpus_per_task stated together, booked as such
        assert int(res["cpus_per_task"]) == int(row.AllocCPUS)
        assert row.ReqMem == f"{res['mem_mb']}M", (s, row.ReqMem)
        assert slurm_minutes(row.Timelimit) == int(res["runtime"]), (s, row.Timelimit)
    threads = {s["rule"]: int(table.loc[s["slurm_id"]].AllocCPUS) for s in subs}
    assert threads["preprocess"] == cfg["threads"]["preprocess"] == 2
    assert threads["embed_python"] == cfg["threads"]["embed"] == 1
    assert threads["embed_tensorflow"] == cfg["threads"]["embed"]
    # no GPU on this node: the TensorFlow rule asks for none (get_gpu) and runs on the CPU
    tf_job = next(s for s in subs if s["rule"] == "embed_tensorflow")
    assert int(tf_job["resources"].get("gpu", 0)) == 0
    failed = table[table.State != "COMPLETED"]
    assert list(failed.Comment) == [f"rule_embed_python_wildcards_pbmc68k_{GUARDED}"]


def test_memory_guard_fails_attempt_one_and_attempt_two_succeeds(runs):
    guarded = [s for s in runs["subs"] if s["rule"] == "embed_python" and GUARDED in s["wildcards"]]
    assert len(guarded) == 2, guarded
    first, second = (runs["sacct"].loc[s["slurm_id"]] for s in guarded)
    assert (first.State, second.State) == ("FAILED", "COMPLETED")
    mem1, mem2 = (int(r.ReqMem.rstrip("M")) for r in (first, second))
    assert (mem1, mem2) == (250, 500)
    # The guard read SLURM's allocation inside the job (not the rule's --mem-mb argument).
    slurm_log = (
        runs["slurm"]
        / f".snakemake/slurm_logs/rule_embed_python/pbmc68k_{GUARDED}/{guarded[0]['slurm_id']}.log"
    ).read_text()
    assert re.search(
        rf"memory guard: tsne on 700 x \d+ needs about \d+ MB but the job has 250 MB "
        rf"\(SLURM job {guarded[0]['slurm_id']}'s allocation",
        slurm_log,
    ), slurm_log[-3000:]
    rule_log = (runs["slurm"] / f"results/logs/embed/pbmc68k/{GUARDED}.log").read_text()
    assert f"of 500 MB (SLURM job {guarded[1]['slurm_id']}'s allocation" in rule_log
    assert "Trying to restart job" in runs["log"]


def test_outputs_equal_a_local_run(runs):
    import anndata as ad

    for method in DETERMINISTIC + [GUARDED]:
        a = ad.read_h5ad(runs["slurm"] / f"results/embed/pbmc68k/{method}.h5ad")
        b = ad.read_h5ad(runs["local"] / f"results/embed/pbmc68k/{method}.h5ad")
        assert list(a.obs_names) == list(b.obs_names)
        assert a.obsm["X_emb"].shape == b.obsm["X_emb"].shape == (700, 2)
        # t-SNE and the autoencoder too: one thread, the same seed and machine (op determinism)
        assert np.allclose(a.obsm["X_emb"], b.obsm["X_emb"]), method
        assert a.uns["slurm_job_id"] != "" and b.uns["slurm_job_id"] == ""
    ta = pd.read_csv(runs["slurm"] / TARGET, sep="\t")
    tb = pd.read_csv(runs["local"] / TARGET, sep="\t")
    assert len(ta) == len(tb) == 4
    assert sorted(ta["method"]) == sorted(tb["method"]) == sorted(DETERMINISTIC + [GUARDED])


@pytest.fixture
def root_without_account(slurm_cluster):
    """The submitting user loses its SLURM association (so no default account) for a test."""
    subprocess.run(
        ["sacctmgr", "-i", "delete", "user", USER, f"account={ACCOUNT}"],
        check=True,
        capture_output=True,
    )
    try:
        yield
    finally:
        subprocess.run(
            [
                "sacctmgr",
                "-i",
                "add",
                "user",
                USER,
                f"Account={ACCOUNT}",
                f"DefaultAccount={ACCOUNT}",
            ],
            check=True,
            capture_output=True,
        )


def _bad_profile(tmp_path: Path, resources: dict, set_resources: dict | None = None) -> Path:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile["default-resources"] = resources
    if set_resources:
        profile["set-resources"] = set_resources
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    return tmp_path / "profile"


def test_no_account_on_a_cluster_that_enforces_accounts(root_without_account, tmp_path):
    profile = _bad_profile(tmp_path, {"slurm_partition": "debug"})
    proc = snakemake(
        "--profile", str(profile), "results/data/pbmc68k/counts.h5ad", directory=tmp_path
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "No SLURM account given, trying to guess." in text
    assert (
        "SLURM sbatch failed. The error message was 'sbatch: error: Batch job submission "
        "failed: Invalid account or account/partition combination specified'" in text
    )


@pytest.mark.parametrize(
    "resources, set_resources, message",
    [
        (
            {"slurm_account": "nosuchaccount", "slurm_partition": "debug"},
            None,
            "The given account nosuchaccount appears to be invalid",
        ),
        (
            {"slurm_account": ACCOUNT, "slurm_partition": "nosuchpartition"},
            None,
            "sbatch: error: invalid partition specified: nosuchpartition",
        ),
        (
            {"slurm_account": ACCOUNT, "slurm_partition": "debug"},
            {"prepare_dataset": {"mem_mb": 10_000_000}},
            "sbatch: error: Memory specification can not be satisfied",
        ),
    ],
    ids=["unknown-account", "unknown-partition", "memory-above-node"],
)
def test_bad_site_settings_fail_at_submission(
    slurm_cluster, tmp_path, resources, set_resources, message
):
    profile = _bad_profile(tmp_path, resources, set_resources)
    proc = snakemake(
        "--profile", str(profile), "results/data/pbmc68k/counts.h5ad", directory=tmp_path
    )
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_budget_is_the_request_and_a_job_past_it_is_a_status_row(slurm_cluster, tmp_path):
    """A budget becomes the SLURM request (memory; time with the supervisor's headroom), and a
    job that runs past it ends as a status row, not a failed SLURM job."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile.pop("set-resources")  # the rules' own resources: the budget
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    budget = "budget={'stages': {'embed': {'time': '10m', 'mem': '2G'}}, 'methods': {'tsne': {'time': '1s'}}}"
    proc = snakemake(
        "--profile",
        str(tmp_path / "profile"),
        "--config",
        "selection={'datasets': ['pbmc68k'], 'methods': ['pca', 'tsne']}",
        budget,
        "--",
        TARGET,
        directory=tmp_path,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    _, subs = parse_submissions(log)
    embeds = {s["wildcards"]: s for s in subs if s["rule"] == "embed_python"}
    table = sacct([s["slurm_id"] for s in embeds.values()])
    for method, minutes in (("pca", 10 + 5), ("tsne", 1 + 5)):
        row = table.loc[embeds[f"dataset=pbmc68k, method={method}"]["slurm_id"]]
        assert row.State == "COMPLETED", (method, row.State)
        assert _slurm_mb(row.ReqMem) == 2048, (method, row.ReqMem)  # sacct prints 2G
        assert slurm_minutes(row.Timelimit) == minutes, (method, row.Timelimit)
    timing = pd.read_csv(tmp_path / TARGET, sep="\t").set_index("method")
    assert timing.loc["tsne", "status_message"] == "timeout after 1 s"
    assert timing.loc["pca", "status"] == "ok"
    rule_log = (tmp_path / "results/logs/embed/pbmc68k/tsne.log").read_text()
    assert "job ended with status timeout: timeout after 1 s" in rule_log
