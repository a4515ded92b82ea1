"""The resource policy of the jobs (memory, runtime, budgets, retries) at 700 and 1.3M cells, and
the start-up banner's reading of the command line."""

from __future__ import annotations

import copy

import pytest
import yaml

from scdrbench.common import banner, peaks, resources
from scdrbench.common.budget import RUNTIME_HEADROOM_MIN, Budget
from scdrbench.common.config import validate_config
from scdrbench.methods import tsne
from tests.conftest import ROOT

SMALL, LARGE = 700, 1_306_127  # the paper's pbmc3k_subset_700 and mouse_brain_1m


@pytest.fixture(scope="module")
def paper():
    return validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))


def with_budget(config, **budget):
    config = copy.deepcopy(config)
    config["budget"].update(budget)
    return validate_config(config)


@pytest.mark.parametrize("stage", ["prepare", "preprocess", "score"])
def test_memory_of_a_stage_without_a_model_grows_with_the_cells(paper, stage):
    small = resources.mem_mb(paper, stage, SMALL)
    large = resources.mem_mb(paper, stage, LARGE)
    # the stage's base, then its share per cell: 700 cells add under 6 MB, 1.3M cells gigabytes
    assert resources.MEM_BASE_MB[stage] <= small < resources.MEM_BASE_MB[stage] + 6
    per_cell_kb = resources.MEM_PER_CELL_KB[stage]
    assert large == int(resources.MEM_BASE_MB[stage] + LARGE * per_cell_kb / 1024)
    assert large - small > 2000


def test_an_embedding_job_asks_for_its_methods_model_with_headroom(paper):
    for n in (SMALL, LARGE):
        model = tsne.estimate_memory_mb(n, paper["preprocess"]["n_pcs"])
        request = resources.mem_mb(paper, "embed", n, "tsne")
        assert request >= resources.MEM_BASE_MB["embed"] + 1.5 * model - 1
    # the 1.3M-cell UMAP job's request is above the peak the ladder's job reached (it fits)
    assert resources.mem_mb(paper, "embed", LARGE, "umap") > peaks.read()["umap"][LARGE]
    assert resources.mem_mb(paper, "embed", SMALL, "umap") < 3000


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_memory_doubles_on_each_retry(paper, n):
    for stage, method in (("prepare", None), ("embed", "umap"), ("score", "umap")):
        first = resources.mem_mb(paper, stage, n, method, attempt=1)
        assert resources.mem_mb(paper, stage, n, method, attempt=2) in (2 * first, 2 * first + 1)
        assert resources.mem_mb(paper, stage, n, method, attempt=3) >= 4 * first


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_a_memory_budget_is_the_request_at_every_attempt(paper, n):
    config = with_budget(paper, stages={"embed": {"mem": "22G"}}, methods={"tsne": {"mem": "8G"}})
    assert resources.mem_mb(config, "embed", n, "umap", attempt=1) == 22 * 1024
    assert resources.mem_mb(config, "embed", n, "umap", attempt=3) == 22 * 1024
    assert resources.mem_mb(config, "embed", n, "tsne", attempt=2) == 8 * 1024
    assert resources.budget_mem_mb(config, "embed", "tsne") == 8 * 1024
    assert resources.budget_mem_mb(paper, "embed", "tsne") == 0
    # a method's own budget is for its embedding jobs only; scoring sizes by the cells
    assert resources.mem_mb(config, "score", n, "tsne") == resources.mem_mb(paper, "score", n)


def test_runtime_from_the_cells_and_the_attempt(paper):
    # ten minutes, plus a minute per 1,000 cells to embed, 0.3 for the other stages
    assert resources.runtime_min(paper, "embed", SMALL, "umap") == 10
    assert resources.runtime_min(paper, "embed", LARGE, "umap") == 1316
    assert resources.runtime_min(paper, "score", LARGE, "umap") == int(10 + 1306.127 * 0.3)
    assert resources.runtime_min(paper, "prepare", SMALL) == 10
    assert resources.runtime_min(paper, "embed", LARGE, "umap", attempt=2) == 2632


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_a_time_budget_is_the_runtime_with_headroom_at_every_attempt(paper, n):
    config = with_budget(paper, stages={"score": {"time": "60m"}, "embed": {"time": "100m"}})
    for attempt in (1, 2):
        got = resources.runtime_min(config, "embed", n, "umap", attempt)
        assert got == 100 + RUNTIME_HEADROOM_MIN
    assert resources.runtime_min(config, "score", n, "umap") == 60 + RUNTIME_HEADROOM_MIN
    assert resources.budget_time_s(config, "embed", "umap") == 6000
    assert resources.budget_time_s(paper, "embed", "umap") == 0


def status(kind, budget, token="made with 6000s/-"):
    return {"status": kind, "status_message": kind, "budget": budget, "retry_token": token}


def test_retries_only_a_failed_job_whose_budget_grew(paper):
    grown = with_budget(paper, stages={"embed": {"time": "200m"}})
    same = with_budget(paper, stages={"embed": {"time": "100m"}})
    old = Budget(time_s=6000).token()
    assert resources.retry_token(grown, "umap", None) == ""
    assert resources.retry_token(grown, "umap", status("timeout", old)) == "retry with 12000s/-"
    assert resources.retry_token(grown, "umap", status("out_of_memory", old)).startswith("retry")
    # the same budget, or a job that succeeded: the token the file was made with (no re-run)
    assert resources.retry_token(same, "umap", status("timeout", old)) == "made with 6000s/-"
    assert resources.retry_token(grown, "umap", status("ok", old)) == "made with 6000s/-"


def test_summary_memory_grows_with_cells_times_methods():
    assert resources.summary_mem_mb(SMALL, 18) == 1500
    assert resources.summary_mem_mb(LARGE, 18) == int(1500 + LARGE * 18 * 64 / 1e6)
    first = resources.summary_mem_mb(LARGE, 18)
    assert resources.summary_mem_mb(LARGE, 18, attempt=2) in (2 * first, 2 * first + 1)


@pytest.mark.parametrize(
    "argv, dry",
    [
        (["-n"], True),
        (["--dry-run", "all"], True),
        (["-np", "--cores", "2"], True),
        (["--cores", "2", "summary"], False),
        (["--configfile", "n.yaml"], False),
        (["-c2"], False),
    ],
)
def test_dry_run_is_read_from_the_command_line(argv, dry):
    assert banner.dry_run(argv) is dry


def test_the_banner_counts_the_plan_and_names_the_downloads(paper, tmp_path):
    from scdrbench.common.config import dataset_grid, grid_pairs

    entries = dataset_grid(paper)
    methods = paper["selection"]["methods"]
    line = banner.plan_banner(
        entries, len(methods), len(grid_pairs(paper, entries)), [], ROOT, [], {}
    )
    assert line.startswith(f"scdrbench: {len(entries)} data sets x {len(methods)} methods")
    assert "\n" not in line
    assert "downloads (if not there yet): " in line
    assert "mouse_brain_1m (https://" in line
    # the demo profile with a config of one's own: the line says the demo's is replaced
    mine = tmp_path / "my.yaml"
    mine.write_text("seed: 1\n")
    demo = banner.plan_banner(entries, 1, 1, [mine], ROOT, ["--profile", "profiles/demo"], {})
    assert "the demo profile's demo.yaml is replaced" in demo
    assert "no 'selection' in yours" in demo
