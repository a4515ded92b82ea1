# Config validation, the dataset x method grid, wildcard constraints and every get_* function.
import json
import os
import sys
import shlex

from scdrbench.common.budget import Budget, job_budget
from scdrbench.common.config import (
    INPUT_DIMS,
    ConfigError,
    dataset_grid,
    digest,
    grid_pairs,
    predicted_overruns,
    semantic_labels,
    url_filename,
    validate_config,
)
from scdrbench.stages.check_config import load as load_config_file
from scdrbench.common import command
from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.io import check_writable
from scdrbench.common.keep import rerun_failures, retry_token
from scdrbench.common.runtime import TENSORFLOW_QUIET, THREAD_VARIABLES

# 1. Validate first: nothing reads the config before this (defaults are filled in here). A bad
# config is one line naming the key, without Snakemake's traceback of this file.
try:
    validate_config(config)
except ConfigError as _err:
    print(f"scdrbench error: {_err}", file=sys.stderr)
    sys.exit(1)

# 2. The grid.
DATASET_ENTRIES = dataset_grid(config)
DATASETS = list(DATASET_ENTRIES)
BASE_DATASETS = [d for d, e in DATASET_ENTRIES.items() if "parent" not in e]
SUBSAMPLED_DATASETS = [d for d, e in DATASET_ENTRIES.items() if "parent" in e]
METHODS = list(config["selection"]["methods"])
# Every (data set, method) job: datasets x methods, except a method that needs protein (ADT)
# counts on a data set without them.
PAIRS = grid_pairs(config, DATASET_ENTRIES)
FAMILIES = {
    family: [m for m in METHODS if config["methods"][m]["family"] == family]
    for family in ("python", "tensorflow", "precomputed")
}
REPEATS = config["repeats"]
ROOT = workflow.basedir
# Every job starts with TensorFlow's start-up lines off (plain, SLURM or any executor: the
# prefix is part of the shell command); a value set in the user's environment wins.
QUIET_ENV = " ".join(f"{var}=${{{var}:-{value}}}" for var, value in TENSORFLOW_QUIET.items())
# The jobs' entry points (scripts/<stage>.py; the library is the installed package scdrbench),
# relative to the working directory: a moved or copied checkout keeps its jobs' params and code
# (no absolute path in either), so it re-runs nothing.
SCRIPTS = os.path.relpath(os.path.join(ROOT, "scripts"))
# Jobs whose method's memory model exceeds the memory budget (budget.over_estimate: skip; with
# the default, error, the first one has already stopped the workflow here, naming the key).
try:
    OVERRUNS = {(d, m): msg for d, m, msg in predicted_overruns(config, DATASET_ENTRIES)}
except ConfigError as _err:
    print(f"scdrbench error: {_err}", file=sys.stderr)
    sys.exit(1)


def plan_banner():
    """One line at start: what will be planned, from which config, and whether it downloads."""
    downloads = [
        f"{d} ({e['url']})"
        for d, e in DATASET_ENTRIES.items()
        if "parent" not in e and "url" in e and "path" not in e
    ]
    files = ", ".join(str(f) for f in workflow.configfiles) or "config.yaml"
    base = os.path.realpath(os.path.join(ROOT, "config.yaml"))
    yours = [f for f in workflow.configfiles if os.path.realpath(f) != base]
    demo = os.path.join(ROOT, "profiles", "demo")
    used = {os.path.realpath(f) for f in workflow.configfiles}
    if _demo_profile(demo) and os.path.realpath(os.path.join(demo, "demo.yaml")) not in used:
        files += (
            " (the demo profile's demo.yaml is replaced by your --configfile: extend the "
            "demo with 'make demo CONFIG=my.yaml' or "
            "'--configfile profiles/demo/demo.yaml my.yaml')"
        )
    if yours and not any("selection" in load_config_file(f) for f in yours):
        files += (
            " (no 'selection' in yours: config.yaml's, the paper run; "
            "add 'selection: {datasets: [...], methods: [...]}' to choose)"
        )
    return (
        f"scdrbench: {len(DATASETS)} data sets x {len(METHODS)} methods = {len(PAIRS)} "
        f"embedding jobs, config {files}; "
        + (
            f"downloads (if not there yet): {'; '.join(downloads)}"
            if downloads
            else "nothing to download"
        )
    )


def _demo_profile(demo):
    """Whether this run's --profile (or $SNAKEMAKE_PROFILE) is the demo's."""
    given = command.profiles(sys.argv[1:]) or [os.environ.get("SNAKEMAKE_PROFILE", "")]
    paths = {os.path.realpath(demo), os.path.realpath(os.path.join(demo, "config.yaml"))}
    # a relative path is the original directory's: the workflow's, or here (no --directory)
    return any(
        p and {os.path.realpath(p), os.path.realpath(os.path.join(ROOT, p))} & paths for p in given
    )


print(plan_banner(), file=sys.stderr)
if workflow.is_main_process:
    # this run's own command, for the repair commands its jobs print (--forcerun <file>): the
    # same profile, config files and directory (src/scdrbench/common/command.py)
    os.environ[command.ENV] = command.run_command(sys.argv[1:], workflow.resource_settings.cores)


def _dry_run():
    """-n / --dry-run on the command line (Snakemake knows it only after parsing this file)."""
    short = [a for a in sys.argv[1:] if a.startswith("-") and not a.startswith("--")]
    return bool({"--dry-run", "--dryrun"} & set(sys.argv)) or any(
        a[1:].isalpha() and "n" in a[1:] for a in short
    )


# A read-only results folder: one line now, not Snakemake's exceptions while it plans the jobs
if workflow.is_main_process and not _dry_run():
    try:
        check_writable("results")
    except ScdrbenchError as _err:
        print(f"scdrbench error: {_err}", file=sys.stderr)
        sys.exit(1)
for _msg in OVERRUNS.values():
    print(f"scdrbench: will be recorded as skipped: {_msg}", file=sys.stderr)
if workflow.is_main_process:
    # results kept through a failed re-run stay marked until a run of them succeeds
    for _path, _line in rerun_failures("results"):
        print(f"scdrbench: {_path}: {_line}", file=sys.stderr)


def _alternatives(ids):
    """Regex alternation of ids; a never-matching pattern when the list is empty."""
    return "|".join(ids) if ids else "(?!x)x"


# 3. Every wildcard is closed to registry keys.
wildcard_constraints:
    dataset=_alternatives(DATASETS),
    method=_alternatives(METHODS),


# 4. Input, param and resource functions.
def get_thread_env(wildcards, threads):
    """Shell prefix pinning every thread pool to the job's threads before Python starts."""
    pools = " ".join(f"{var}={threads}" for var in THREAD_VARIABLES)
    return f"{pools} TF_NUM_INTEROP_THREADS=1 {QUIET_ENV}"


def get_script(stage):
    """The entry point a stage's jobs run: scripts/<stage>.py, relative to the working directory."""
    return os.path.join(SCRIPTS, f"{stage}.py")


def _pairs(pattern, pairs=None):
    """``pattern`` filled for every job of the grid (or of ``pairs``), data set by data set."""
    return [pattern.format(dataset=d, method=m) for d, m in (PAIRS if pairs is None else pairs)]


def get_final_outputs():
    """Everything the default target builds."""
    return get_summary_outputs()


def get_embedding_outputs():
    """All embedding files of the grid."""
    return _pairs("results/embed/{dataset}/{method}.h5ad")


def get_metric_outputs():
    """All metric files of the grid."""
    return _pairs("results/metrics/{dataset}/{method}.tsv")


def get_summary_outputs():
    """Tables and figures."""
    return [
        "results/tables/timing.tsv",
        "results/tables/timing.md",
        "results/tables/metrics.tsv",
        "results/tables/metrics.md",
        "results/tables/metrics.html",
        "results/tables/ranking.tsv",
        "results/tables/ranking.md",
        "results/tables/ranking.html",
        "results/tables/findings.md",
        "results/figures/comparison.png",
        "results/figures/comparison.pdf",
        "results/figures/scaling.png",
        "results/figures/scaling.pdf",
        "results/figures/metrics_heatmap.png",
        "results/figures/metrics_heatmap.pdf",
        *get_embedding_panels(),
        *(
            [
                "results/tables/stability.tsv",
                "results/tables/stability.md",
                "results/figures/stability.png",
                "results/figures/stability.pdf",
            ]
            if STABILITY_DATASETS
            else []
        ),
    ]


STABILITY = config["stability"]
STABILITY_DATASETS = [d for d in DATASETS if d in STABILITY["datasets"]]


def get_stability_outputs(ext):
    """The stability stage's per-job files (none when it is off)."""
    pairs = [
        (d, m)
        for d, m in PAIRS
        if d in STABILITY_DATASETS and config["methods"][m]["family"] != "precomputed"
    ]
    return _pairs(f"results/stability/{{dataset}}/{{method}}.{ext}", pairs)


def get_stability_json():
    """The stability section, as JSON for the script."""
    return json.dumps(STABILITY, sort_keys=True)


def get_embedding_panels():
    """One PNG per embedding, in the order of get_embedding_outputs()."""
    return _pairs("results/figures/embeddings/{dataset}/{method}.png")


def get_embedding_panel_reports():
    """The same, as report items: category Embeddings, a subcategory per dataset; flagged
    update() like every summary product (a failed re-run keeps the previous panels)."""
    from snakemake.io import report as report_item  # "report" opens a directive at line start

    return [
        update(
            report_item(
                path,
                caption="report/embedding.rst",
                category="Embeddings",
                subcategory=dataset,
                labels={"dataset": dataset, "method": method},
            )
        )
        for path, (dataset, method) in zip(get_embedding_panels(), PAIRS)
    ]


def get_benchmark_files():
    """The explicit list of embedding benchmark files (no directory walk)."""
    return _pairs("results/benchmarks/embed/{dataset}/{method}.tsv")


# The scripts get the whole registry entry (the *_entry_json params); Snakemake compares only
# its digest (the *_digest params, src/scdrbench/common/config.py:digest), so that descriptions,
# labels, n_cells and new defaults never re-run a job. The entry functions take `threads`
# only to tell Snakemake they are derived params, which it does not compare.


def get_dataset_entry_json(wildcards, threads):
    """The dataset's registry entry, as JSON for the script (not compared: see above)."""
    return json.dumps(DATASET_ENTRIES[wildcards.dataset], sort_keys=True)


def get_method_labels_json():
    """Method id -> label, for the summary (labels change there, not in the embeddings)."""
    return json.dumps({m: config["methods"][m]["label"] for m in METHODS}, sort_keys=True)


def get_dataset_digest(wildcards):
    """What the dataset's prepare job computes (compared by Snakemake)."""
    return digest(DATASET_ENTRIES[wildcards.dataset], "dataset")


def get_method_entry_json(wildcards, threads):
    """The method's registry entry (defaults filled), as JSON for the script (not compared)."""
    return json.dumps(config["methods"][wildcards.method], sort_keys=True)


def get_method_digest(wildcards):
    """What the method's jobs compute (compared by Snakemake)."""
    return digest(config["methods"][wildcards.method], "method")


def get_labels_json(wildcards):
    """The dataset's labels entry (a key at its default left out, as in the digest), as JSON."""
    return json.dumps(semantic_labels(DATASET_ENTRIES[wildcards.dataset]["labels"]), sort_keys=True)


def get_preprocess_json():
    """The preprocess config section, as JSON."""
    return json.dumps(config["preprocess"], sort_keys=True)


def get_seed():
    """The master seed."""
    return config["seed"]


def get_subsample_parent(wildcards):
    """pca.h5ad of the data set a subsample variant is drawn from."""
    return f"results/data/{DATASET_ENTRIES[wildcards.dataset]['parent']}/pca.h5ad"


def get_subsample_size(wildcards):
    """Cells in a subsample variant."""
    return DATASET_ENTRIES[wildcards.dataset]["n_cells"]


def get_threads(stage):
    """Threads of a stage's jobs (config 'threads')."""
    return config["threads"][stage]


def _n_cells(wildcards):
    return DATASET_ENTRIES[wildcards.dataset]["n_cells"]


# Memory model: base + bytes per cell by stage, and for embedding jobs the method's own
# estimate (the one its memory guard checks) with headroom; doubled on each retry so a job
# stopped by the guard or killed for memory comes back with more.
MEM_BASE_MB = {"prepare": 2000, "preprocess": 2000, "embed": 1500, "score": 1500}
MEM_PER_CELL_KB = {"prepare": 8, "preprocess": 6, "score": 2}


def _budget(stage, wildcards) -> Budget:
    return job_budget(config, stage, getattr(wildcards, "method", None))


def get_mem_mb(stage):
    """A resource function: memory in MB for a stage: its budget (config `budget`) when one is
    set, else from the data set's size and the method's memory model, doubled per attempt."""
    from scdrbench.methods import get_method

    def mem_mb(wildcards, attempt):
        budget = _budget(stage, wildcards)
        if budget.mem_mb is not None:
            return int(budget.mem_mb)
        n = _n_cells(wildcards)
        if stage == "embed":
            entry = config["methods"][wildcards.method]
            dims = config["preprocess"][INPUT_DIMS[entry["input"]]]
            impl = get_method(entry["algorithm"])
            need = MEM_BASE_MB[stage] + 1.5 * impl.estimate_memory_mb(n, dims, **entry["params"])
        else:
            need = MEM_BASE_MB[stage] + n * MEM_PER_CELL_KB[stage] / 1024
        return int(need * 2 ** (attempt - 1))

    return mem_mb


def get_runtime(stage):
    """A resource function: runtime in minutes: the time budget with a few minutes' headroom (the
    supervisor ends the job at the budget and records it), else from the data set's size."""

    def runtime(wildcards, attempt):
        budget = _budget(stage, wildcards)
        if budget.time_s is not None:
            return budget.runtime_min()
        minutes = 10 + _n_cells(wildcards) / 1000 * (1.0 if stage == "embed" else 0.3)
        return int(minutes * attempt)

    return runtime


def get_budget_time_s(stage):
    """A resource (not a rerun trigger): the supervisor's time limit in seconds, 0 for none."""

    def budget_time_s(wildcards):
        return int(_budget(stage, wildcards).time_s or 0)

    return budget_time_s


def get_budget_mem_mb(stage):
    """A resource: the supervisor's memory limit in MB, 0 for none."""

    def budget_mem_mb(wildcards):
        return int(_budget(stage, wildcards).mem_mb or 0)

    return budget_mem_mb


def get_retry_token(wildcards):
    """A param that changes, so that Snakemake re-runs the job, only when the job's existing
    output is a status record (timeout, out of memory...) and the budget has since grown.

    Otherwise it returns the token the existing file was made with (stored in it), so a
    changed budget never re-runs a job that succeeded, or one that failed with the same budget.
    """
    from scdrbench.common.embedding_file import read_status

    # the path from the wildcards, not the `output` argument: Snakemake records (and compares)
    # only params that are not derived from input, output, threads or resources
    status = read_status(f"results/embed/{wildcards.dataset}/{wildcards.method}.h5ad")
    if status is None:
        return ""
    budget = _budget("embed", wildcards)
    if status["status"] != "ok" and budget.exceeds(Budget.from_token(status["budget"])):
        return f"retry with {budget.token()}"
    return status["retry_token"]


class NoRetry:
    """The retry_after param when no failure is noted: not a builtin type, so Snakemake neither
    records nor compares it, and results made before the param existed are not re-run."""

    def __str__(self):
        return ""


def get_retry_after(pattern):
    """A param function: the id of the last failure by the environment of the job that makes
    ``pattern`` (no space, a signal...; for a summary job, any failure), from its state file: a
    new id re-runs the job once (src/scdrbench/common/keep.py)."""

    def retry_after(wildcards):
        return retry_token(pattern.format(**dict(wildcards.items()))) or NoRetry()

    return retry_after


def get_precomputed_file(wildcards):
    """The coordinates file of a precomputed method (params.path)."""
    return config["methods"][wildcards.method]["params"]["path"]


def get_gpu(wildcards):
    """GPUs per TensorFlow job: 0 here (CPU); a GPU site raises it in its profile."""
    return 0


def get_cpus_per_task(wildcards, threads):
    """SLURM CPUs per task: the job's threads (after --cores/--max-threads), stated with them.

    snakemake-executor-plugin-slurm books ``cpus_per_task`` when it is set; stating it next to
    ``threads`` in every rule keeps the allocation and the thread pools the same number.
    """
    return threads


# Downloads: sources read from one or two remote files, each staged under results/downloads/.
DOWNLOAD_KEYS = {"url": "path", "adt_url": "adt_path"}


def _download_files(dataset):
    """{input name: file under results/downloads or the local copy} for a base data set."""
    entry = DATASET_ENTRIES[dataset]
    files = {}
    for url_key, path_key in DOWNLOAD_KEYS.items():
        if path_key in entry:
            files[url_key.replace("url", "file")] = entry[path_key]
        elif url_key in entry:
            name = url_filename(entry[url_key])
            files[url_key.replace("url", "file")] = f"results/downloads/{dataset}/{name}"
    return files


def get_prepare_inputs(wildcards):
    """Downloaded files (or local copies) the prepare step reads."""
    return _download_files(wildcards.dataset)


def get_prepare_inputs_json(wildcards):
    """The same, as JSON for the script."""
    return json.dumps(_download_files(wildcards.dataset), sort_keys=True)


def get_download_url(wildcards):
    """The address a file under results/downloads/{dataset}/ comes from."""
    entry = DATASET_ENTRIES[wildcards.dataset]
    for url_key in DOWNLOAD_KEYS:
        url = entry.get(url_key, "")
        if url_filename(url) == wildcards.filename:
            return url
    raise ValueError(f"no address in datasets.{wildcards.dataset} ends in {wildcards.filename}")


def get_download_checks(wildcards):
    """Command-line checks of a download: the registry's size, sha256, md5 (they describe `url`)."""
    entry = DATASET_ENTRIES[wildcards.dataset]
    if url_filename(entry.get("url", "")) != wildcards.filename:
        return ""
    checks = [f"--size {entry['size']}"] if "size" in entry else []
    checks += [f"--{k} {entry[k]}" for k in ("sha256", "md5") if k in entry]
    return " ".join(checks)


def get_findings_ladder():
    """The scaling ladder's table findings.md reads beside this run's tables (config
    `findings.ladder`), as a list: empty when none is given."""
    return [config["findings"]["ladder"]] if "ladder" in config["findings"] else []


def get_findings_ladder_arg():
    """The summary's --ladder argument, or nothing."""
    return " ".join(f"--ladder {shlex.quote(p)}" for p in get_findings_ladder())


def get_summary_mem_mb(wildcards, attempt):
    """Memory for the figure: every embedding's coordinates are read once."""
    n = sum(e["n_cells"] for e in DATASET_ENTRIES.values())
    return int((1500 + n * len(METHODS) * 64 / 1e6) * attempt)
