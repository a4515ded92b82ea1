# Config validation, the dataset x method grid, wildcard constraints and the get_* input, param
# and resource functions (target lists: rules/targets.smk; the resource policy and the start-up
# banner: src/scdrbench/common/resources.py and banner.py).
import json
import os
import sys

from scdrbench.common import banner, resources
from scdrbench.common.config import (
    ConfigError,
    dataset_grid,
    digest,
    grid_pairs,
    predicted_overruns,
    semantic_labels,
    url_filename,
    validate_config,
)
from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.keep import retry_token
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
STABILITY = config["stability"]
STABILITY_DATASETS = [d for d in DATASETS if d in STABILITY["datasets"]]
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


# The start-up banner and checks (src/scdrbench/common/banner.py): one line of plan, this run's
# command for the repair commands its jobs print, a read-only results folder as one line.
try:
    banner.start_up(DATASET_ENTRIES, len(METHODS), len(PAIRS), OVERRUNS.values(), workflow)
except ScdrbenchError as _err:
    print(f"scdrbench error: {_err}", file=sys.stderr)
    sys.exit(1)


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


def get_stability_json():
    """The stability section, as JSON for the script."""
    return json.dumps(STABILITY, sort_keys=True)


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


# The resource policy is src/scdrbench/common/resources.py (memory and runtime requests, budgets,
# retries; unit-tested there); these are its resource and param functions.


def get_mem_mb(stage):
    """A resource function: memory in MB for a stage's jobs, doubled per attempt."""

    def mem_mb(wildcards, attempt):
        method = getattr(wildcards, "method", None)
        return resources.mem_mb(config, stage, _n_cells(wildcards), method, attempt)

    return mem_mb


def get_runtime(stage):
    """A resource function: runtime in minutes for a stage's jobs."""

    def runtime(wildcards, attempt):
        method = getattr(wildcards, "method", None)
        return resources.runtime_min(config, stage, _n_cells(wildcards), method, attempt)

    return runtime


def get_budget_time_s(stage):
    """A resource (not a rerun trigger): the supervisor's time limit in seconds, 0 for none."""

    def budget_time_s(wildcards):
        return resources.budget_time_s(config, stage, getattr(wildcards, "method", None))

    return budget_time_s


def get_budget_mem_mb(stage):
    """A resource: the supervisor's memory limit in MB, 0 for none."""

    def budget_mem_mb(wildcards):
        return resources.budget_mem_mb(config, stage, getattr(wildcards, "method", None))

    return budget_mem_mb


def get_retry_token(wildcards):
    """A param that re-runs an embedding job recorded as failed once its budget has grown."""
    from scdrbench.common.embedding_file import read_status

    # the path from the wildcards, not the `output` argument: Snakemake records (and compares)
    # only params that are not derived from input, output, threads or resources
    status = read_status(f"results/embed/{wildcards.dataset}/{wildcards.method}.h5ad")
    return resources.retry_token(config, wildcards.method, status)


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


def get_summary_mem_mb(wildcards, attempt):
    """Memory for the figure: every embedding's coordinates are read once."""
    total = sum(e["n_cells"] for e in DATASET_ENTRIES.values())
    return resources.summary_mem_mb(total, len(METHODS), attempt)
