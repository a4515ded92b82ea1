"""Budgets per job: parsing, config errors before any job, the supervisor's statuses."""

from __future__ import annotations

import copy
import signal
import sys

import numpy as np
import pytest
import yaml

from scdrbench.common.budget import Budget, job_budget, parse_duration, parse_size
from scdrbench.common.config import (
    ConfigError,
    dataset_grid,
    predicted_overruns,
    validate_config,
)
from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.supervise import one_line, supervise
from tests.conftest import ROOT


@pytest.fixture
def paper():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("100m", 6000), ("100 min", 6000), ("1.5h", 5400)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, mb", [("500M", 500), ("22G", 22528), ("1.5GiB", 1536)])
def test_sizes(text, mb):
    assert parse_size(text) == mb


@pytest.mark.parametrize("bad", ["0m", "-5m", "100", "fast", "10 parsecs", ""])
def test_bad_duration_names_the_key(bad):
    with pytest.raises(ScdrbenchError, match=r"'budget.x.time'.*not a positive duration.*100m"):
        parse_duration(bad, "budget.x.time")


@pytest.mark.parametrize(
    "budget, key",
    [
        ({"stages": {"embed": {"time": "-1h"}}}, "budget.stages.embed.time"),
        ({"stages": {"score": {"mem": "lots"}}}, "budget.stages.score.mem"),
        ({"methods": {"tsne": {"mem": 0}}}, "budget.methods.tsne.mem"),
        ({"methods": {"tnse": {"time": "1m"}}}, "budget.methods.tnse"),
        ({"stages": {"embd": {"time": "1m"}}}, "budget.stages.embd"),
    ],
)
def test_bad_budget_is_a_config_error_naming_the_key(paper, budget, key):
    paper["budget"] = budget
    with pytest.raises(ConfigError) as err:
        validate_config(paper)
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_method_budget_overrides_the_stage(paper):
    paper["budget"] = {"stages": {"embed": {"time": "100m", "mem": "22G"}}}
    paper["budget"]["methods"] = {"scvis": {"time": "3h"}}
    validate_config(paper)
    scvis = job_budget(paper, "embed", "scvis")
    assert scvis.time_s == 3 * 3600 and scvis.mem_mb == 22 * 1024
    assert scvis.time_key == "budget.methods.scvis.time"
    assert job_budget(paper, "embed", "tsne").time_s == 6000
    assert job_budget(paper, "score", "tsne") == Budget()  # no score budget: no limit
    assert scvis.runtime_min() == 180 + 5  # SLURM's limit leaves the supervisor time to record


def test_budget_tokens_round_trip_and_compare():
    b = Budget(time_s=6000, mem_mb=22528)
    assert Budget.from_token(b.token()) == Budget(6000, 22528)
    assert Budget(7000, 22528).exceeds(b) and Budget(6000, 30000).exceeds(b)
    assert not Budget(6000, 22528).exceeds(b) and not Budget(60, 100).exceeds(b)
    assert Budget(None, 22528).exceeds(b)  # no time limit is more than any


def test_ladder_rung_larger_than_the_data_set(paper):
    paper["datasets"]["mouse_brain_1m"]["subsample"] = [10000, 2_000_000]
    with pytest.raises(
        ConfigError, match=r"mouse_brain_1m.subsample\[1\]'.*2,000,000.*not smaller"
    ):
        validate_config(paper)


def test_memory_model_over_budget_stops_before_any_job(paper):
    paper["selection"]["methods"] = ["pca", "tsne_p350"]
    paper["budget"] = {"stages": {"embed": {"mem": "22G"}}}
    config = validate_config(paper)
    with pytest.raises(ConfigError) as err:
        predicted_overruns(config, dataset_grid(config))
    msg = str(err.value)
    assert msg.startswith("config key 'budget.stages.embed.mem': tsne_p350 on mouse_brain_1m")
    assert "GiB by its memory model" in msg and "over_estimate: skip" in msg


def test_memory_model_over_budget_is_skipped_when_asked(paper):
    paper["selection"]["methods"] = ["pca", "tsne_p350"]
    paper["budget"] = {"stages": {"embed": {"mem": "22G"}}, "over_estimate": "skip"}
    config = validate_config(copy.deepcopy(paper))
    found = predicted_overruns(config, dataset_grid(config))
    assert [(d, m) for d, m, _ in found] == [("mouse_brain_1m", "tsne_p350")]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_supervisor_ok_records_cpu_and_peak(tmp_path):
    out = supervise(_python("sum(range(3_000_000))"), budget=Budget(60, 2000))
    assert out.status == "ok" and out.message == "ok" and out.returncode == 0
    assert out.cpu_seconds > 0 and out.peak_rss_mb > 1


def test_supervisor_timeout(tmp_path):
    log = tmp_path / "job.log"
    out = supervise(_python("import time; time.sleep(60)"), budget=Budget(1.0, None), log_path=log)
    assert out.status == "timeout"
    assert out.message == "timeout after 1 s"
    assert out.returncode == -signal.SIGTERM  # stopped by the supervisor, not run to its end
    assert "job ended with status timeout: timeout after 1 s" in log.read_text()


def test_supervisor_out_of_memory(tmp_path):
    code = "import numpy as np, time; a = np.ones(400 * 2**20 // 8); time.sleep(30)"
    out = supervise(_python(code), budget=Budget(60, 200))
    assert out.status == "out_of_memory"
    assert out.message == "out of memory at 200 MiB"
    assert out.returncode == -signal.SIGKILL  # killed at the budget, not run to its end


def test_supervisor_error_keeps_the_one_line_and_the_traceback_in_the_log(tmp_path):
    log = tmp_path / "job.log"
    code = "import sys; print('scdrbench error: params.perplexity 300 is too large', file=sys.stderr); sys.exit(1)"
    out = supervise(_python(code), budget=Budget(), log_path=log)
    assert out.status == "error"
    assert out.message == "error: params.perplexity 300 is too large"
    out = supervise(_python("raise ValueError('boom')"), budget=Budget(), log_path=log)
    assert out.message == "error: ValueError: boom"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "ValueError: boom" in text


def test_supervisor_memory_guard_is_skipped():
    code = "import sys; print('scdrbench error: memory guard: needs 9 GB', file=sys.stderr); sys.exit(3)"
    out = supervise(_python(code), budget=Budget(mem_mb=100))
    assert out.status == "skipped" and out.returncode == 3
    assert out.message == "skipped: memory guard: needs 9 GB"


def test_one_line_prefers_the_scdrbench_line():
    lines = ["WARNING something", "scdrbench error: bad file x.h5ad", "", "trailing noise"]
    assert one_line(lines) == "bad file x.h5ad"
    assert one_line(["Traceback", '  File "x"', "KeyError: 'a'"]) == "KeyError: 'a'"
    assert one_line([]) == "no message (see the log file)"


def test_ladder_reads_a_stopped_tsne_jobs_progress_from_its_log():
    from ladder_report import tsne_progress

    log = "\n".join(
        [
            "2026-12-02 02:00:00,000 INFO scdrbench.embed: tsne on x: input pca, 10 cells x 5 dims",
            "2026-12-02 02:30:00,000 INFO scdrbench.methods.tsne: affinities (k = 3): 1800.0 s",
            "2026-12-02 02:35:00,000 INFO scdrbench.methods.tsne: iteration 50: KL divergence 5 "
            "(6.000 s per iteration)",
            "2026-12-02 02:43:20,000 INFO scdrbench.methods.tsne: iteration 150: KL divergence 4 "
            "(5.000 s per iteration)",
            # a log of an earlier version: the second phase counted from 0 again
            "2026-12-02 02:47:30,000 INFO scdrbench.methods.tsne: iteration 50: KL divergence 3 "
            "(5.000 s per iteration)",
            "scdrbench: job ended with status timeout: timeout after 1 min",
        ]
    )
    text = tsne_progress(log, 1000)
    assert text == (
        "reached iteration 200 of 1000; affinities 30.0 min; 5.00 s per iteration; "
        "full fit extrapolated to 113 min (not measured)"
    )
    assert tsne_progress("no timestamps here", 1000) is None


def test_ladder_removes_a_stale_lock_but_not_a_live_runs(tmp_path):
    """A sitting that ended mid-run leaves Snakemake's lock: the next ladder run removes it,
    unless a Snakemake still works in the directory."""
    import subprocess
    import time

    import psutil
    from ladder_setup import CONFIG, unlock_if_stale

    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    (tmp_path / CONFIG).parent.mkdir(parents=True)
    (tmp_path / CONFIG).write_text("{}\n")
    assert unlock_if_stale(tmp_path) is False  # no lock at all
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/x\n")
    # a live run in this directory (named snakemake, as `snakemake ...` shows in ps)
    live = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 60"], cwd=tmp_path)
    try:
        # wait until bash has exec'd (a fixed 0.5 s was too short on a loaded machine)
        deadline = time.monotonic() + 20
        while psutil.Process(live.pid).cmdline()[:1] != ["snakemake"]:
            assert time.monotonic() < deadline, "the stand-in Snakemake never started"
            time.sleep(0.05)
        assert unlock_if_stale(tmp_path) is False
        assert (locks / "0.input.lock").exists()
    finally:
        live.kill()
        live.wait()
    assert unlock_if_stale(tmp_path) is True  # killed: the lock is stale
    assert not locks.exists() or not any(locks.iterdir())


def test_ladder_skips_a_method_its_memory_model_puts_over_budget(monkeypatch):
    """At 1.3M cells t-SNE at perplexity 350 with k = 1,050 needs ~85 GiB by its model, over the
    ladder's 22 GiB: the ladder does not start it and says why (also before anything ran)."""
    import ladder
    import ladder_report
    import pandas as pd

    monkeypatch.setattr(ladder_report, "collect", lambda config: (pd.DataFrame(), pd.DataFrame()))
    monkeypatch.setattr(ladder_report, "recorded_rows", pd.DataFrame)  # no committed table either
    config = ladder.ladder_config()
    skips = ladder.ladder_skips(config, 1_306_127, ["tsne_p350", "tsne_p350_lean", "umap"])
    assert list(skips) == ["tsne_p350"]
    assert (
        "needs about 85.1 GiB by its memory model (src/scdrbench/methods/tsne.py)"
        in skips["tsne_p350"]
    )
    assert "more than its budget 22 GiB" in skips["tsne_p350"]
    assert ladder.ladder_skips(config, 100_000, ["tsne_p350"]) == {}


def _timing_row(method, n, fit, status="ok", message=None):
    return {
        "method": method,
        "method_label": method.upper(),
        "dataset": "proxy_1m" if n == 1_306_127 else f"proxy_1m_n{n}",
        "n_cells": n,
        "s": fit + 2.0,
        "max_rss_mb": 90.0 * n / 1e4,
        "fit_seconds": fit,
        "fit_cpu_seconds": 1.5 * fit,
        "threads_used": 1.5,
        "threads": 2,
        "cpu_seconds": 1.5 * fit + 1.0,
        "peak_rss_mb": 100.0 * n / 1e4,
        "status": status,
        "status_message": message or status,
    }


def test_ladder_table_keeps_what_an_earlier_machine_measured(monkeypatch, tmp_path):
    """A new machine has none of the earlier sittings' results/: the ladder's table keeps the
    committed rows it lacks (numbers and statuses), adds the new ones, fits the power laws and
    skips by them as if everything had been measured here."""
    import ladder
    import ladder_report
    import ladder_setup
    import pandas as pd

    monkeypatch.setattr(ladder_setup, "RESULTS", tmp_path)
    monkeypatch.setattr(ladder_setup, "SKIPS", tmp_path / "ladder_skips.json")
    earlier = [
        _timing_row("tsne", 10_000, 50.0),
        _timing_row("tsne", 30_000, 70.0),
        _timing_row("umap", 10_000, 40.0),
        _timing_row("tsne_p350", 100_000, float("nan"), "timeout", "timeout after 100 min"),
    ]
    empty = pd.DataFrame()
    monkeypatch.setattr(ladder_report, "collect", lambda config: (pd.DataFrame(earlier), empty))
    ladder_report.table("the first machine")
    first = (tmp_path / "ladder.tsv").read_text()
    # the second machine measured only UMAP at 30k, and UMAP at 10k again
    later = [_timing_row("umap", 30_000, 35.0), _timing_row("umap", 10_000, 41.0)]
    monkeypatch.setattr(ladder_report, "collect", lambda config: (pd.DataFrame(later), empty))
    ladder_report.table("the second machine\n; and its unit tests")  # a text file's newline
    text = (tmp_path / "ladder.tsv").read_text()
    assert "# shared with: the second machine ; and its unit tests\n" in text
    assert "the first machine" in first
    rows = pd.read_csv(tmp_path / "ladder.tsv", sep="\t", comment="#").set_index(["method", "rung"])
    assert rows.loc[("tsne", 10_000), "fit_s"] == 50.0
    assert rows.loc[("tsne", 30_000), "fit_s"] == 70.0
    assert rows.loc[("umap", 10_000), "fit_s"] == 41.0  # this machine's measurement wins
    assert rows.loc[("umap", 30_000), "fit_s"] == 35.0
    assert rows.loc[("tsne_p350", 100_000), "status"] == "timeout after 100 min"
    assert rows.loc[("ae_tf", 10_000), "status"] == "not run yet"
    assert rows.loc[("tsne", 10_000), "machine"] == ladder_report.machine()
    assert pd.isna(rows.loc[("ae_tf", 10_000), "machine"])
    fits = pd.read_csv(tmp_path / "ladder_fits.tsv", sep="\t").set_index("method")
    assert fits.loc["tsne", "time_exponent_b"] == pytest.approx(np.log(70 / 50) / np.log(3))
    assert fits.loc["tsne_p350", "status_at_target"] == "not run"
    assert (tmp_path / "ladder_scaling.png").stat().st_size > 10_000
    # the measured peaks, beside the table: every ok row's kernel peak, none of the timeout
    from scdrbench.common import peaks

    measured = peaks.read(tmp_path / "measured_peaks.tsv")
    ok = rows[rows["status"] == "ok"]
    assert sum(len(v) for v in measured.values()) == len(ok) >= 4
    assert "tsne_p350" not in measured
    assert measured["umap"][30_000] == round(ok.loc[("umap", 30_000), "peak_rss_mb"])
    # a third table from the same files changes nothing but the header
    ladder_report.table("the second machine")
    again = (tmp_path / "ladder.tsv").read_text()
    assert again.split("\nmethod\t", 1)[1] == text.split("\nmethod\t", 1)[1]
    config = ladder.ladder_config()
    skips = ladder.ladder_skips(config, 300_000, ["tsne_p350", "tsne"])
    assert skips == {"tsne_p350": "not run: timeout after 100 min at 100,000 cells"}
    # a table from before the machine column: its header names the machine of every row
    legacy = "# date: x\n# machine: the old box\nmethod\trung\tdataset\tstatus\tfit_s\n"
    (tmp_path / "ladder.tsv").write_text(legacy + "tsne\t10000\tproxy_1m_n10000\tok\t50.0\n")
    assert list(ladder_report.recorded_rows()["machine"]) == ["the old box"]


def test_supervisor_keeps_tensorflows_harmless_lines_off_the_console(tmp_path, capfd):
    log = tmp_path / "job.log"
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "E0000 00:00:1796477978.655524   27972 node_def_util.cc:682] NodeDef mentions attribute "
        "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset>",
        "E0000 00:00:1796477978.700000   27972 cuda_executor.cc:1] a real TensorFlow error",
    ]
    code = f"import sys; sys.stderr.write({''.join(line + chr(10) for line in lines)!r})"
    out = supervise(_python(code), budget=Budget(), log_path=log)
    assert out.status == "ok"
    console = capfd.readouterr().err.splitlines()
    assert console == [lines[2]]  # the real error still reaches the console
    assert [line for line in log.read_text().splitlines() if line] == lines  # all in the log


def test_ladder_variants_put_each_setting_beside_its_default():
    """ladder_variants.md: a setting for large data and its default side by side at each rung
    where both have a row of the same proxy version; the default's status where it did not run."""
    import ladder_views
    import pandas as pd

    def row(method, rung, status="ok", fit=10.0, version=4):
        return {
            "method": method, "rung": rung, "proxy_version": version, "status": status,
            "fit_s": fit, "peak_rss_mb": 1000.0, "knn_accuracy": 0.5, "knc": 0.6, "cpd": 0.7,
            "knn_accuracy_leiden": 0.8,
        }  # fmt: skip

    rows = pd.DataFrame(
        [
            row("phate", 100_000, fit=42.0),
            row("phate_lean", 100_000, fit=35.0),
            row("phate", 10_000, fit=99.0, version=1),  # another proxy: not compared
            row("phate_lean", 10_000, fit=5.0),
            row("phate", 10_000, "not run yet"),
            row(
                "spectral",
                100_000,
                "not run: spectral (100,000 cells) needs about 33.3 GiB by "
                "its memory model (src/scdrbench/methods/spectral.py)",
            ),  # fmt: skip
            row("spectral_lobpcg", 100_000, fit=26.0),
        ]
    )
    text = ladder_views.variants_table(rows, 4)
    assert "## `phate_lean` against `phate`" in text
    assert "| 100,000 | 42 / 35 | 1,000 / 1,000 | 0.500 / 0.500 |" in text
    assert "| 10,000 | 5 |" in text and "`phate`: not run yet" in text and "99" not in text
    assert "`spectral`: not run: 33 GiB by its memory model" in text
    assert "tsne_exag" not in text  # no rows, no section


def test_paper_run_removes_a_stale_lock_with_its_own_command(tmp_path, capsys):
    """The paper run spans sittings: its next ``run`` removes the lock a sitting that ended
    mid-run left, with the run's own Snakemake command (its Snakefile is elsewhere)."""
    from ladder_setup import unlock_if_stale

    wf, work = tmp_path / "wf", tmp_path / "work"
    wf.mkdir()
    (wf / "Snakefile").write_text("rule all:\n    input: []\n")
    locks = work / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/x\n")
    command = ["snakemake", "-s", str(wf / "Snakefile"), "--directory", str(work), "--cores", "1"]
    assert unlock_if_stale(work, command, who="paper run") is True
    assert not locks.exists() or not any(locks.iterdir())
    out = capsys.readouterr().out
    assert out.startswith("paper run: .snakemake/locks holds the lock of an earlier run")
    assert unlock_if_stale(work, command, who="paper run") is False  # nothing left to remove


def test_ladder_does_not_measure_again_what_the_committed_table_holds(monkeypatch, tmp_path):
    """A fresh machine (results/ wiped) resumes a rung: the jobs the committed table holds for
    the current proxy version, finished or stopped by their budget, are not run again; an
    earlier version's row, an error row and a job with no row are (``--again``: all of them)."""
    import ladder
    import ladder_report
    import pandas as pd

    version = ladder_report.current_proxy_version()
    rows = [
        ("tsne", version, "ok", "ok"),
        ("tsne_p350", version, "timeout after 100 min", "timeout"),
        ("umap", version - 1, "ok", "ok"),
        ("pacmap", version, "error: exit status 1", "error"),
    ]
    rows = [
        {
            "dataset": "proxy_1m_n30000",
            "method": m,
            "proxy_version": v,
            "status": s,
            "status_code": c,
        }
        for m, v, s, c in rows
    ]
    monkeypatch.setattr(ladder_report, "recorded_rows", lambda: pd.DataFrame(rows))
    monkeypatch.setattr(ladder, "ROOT", tmp_path)  # a results/ with nothing in it
    methods = ["tsne", "tsne_p350", "umap", "pacmap", "trimap"]
    before = ladder.measured_before("proxy_1m_n30000", methods)
    assert sorted(before) == ["tsne", "tsne_p350"]
    assert before["tsne_p350"] == (
        "measured in an earlier sitting (benchmarks/results/ladder.tsv, proxy version "
        f"{version}): timeout after 100 min"
    )
    # the job is in this machine's results/: Snakemake decides, as before
    (tmp_path / "results/metrics/proxy_1m_n30000").mkdir(parents=True)
    (tmp_path / "results/metrics/proxy_1m_n30000/tsne.tsv").write_text("x\n")
    assert list(ladder.measured_before("proxy_1m_n30000", methods)) == ["tsne_p350"]
    assert ladder.measured_before("proxy_1m_n10000", methods) == {}  # another rung
