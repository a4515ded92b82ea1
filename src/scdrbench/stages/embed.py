"""Run one embedding method on one data set and write ``results/embed/{dataset}/{method}.h5ad``.

The file's contract (cells, coordinates, ``uns``) is :mod:`scdrbench.common.embedding_file`'s.
Beside the coordinates this job records ``fit_seconds`` (the method's fit alone; its libraries
are imported before the clock starts), ``fit_cpu_seconds`` (CPU time of all its threads during
the fit: ``fit_cpu_seconds / fit_seconds`` is the number of threads it actually kept busy),
``cpu_seconds`` (the whole job process), ``peak_rss_mb`` (the kernel's high-water mark,
``getrusage``), ``versions`` (the method module's ``VERSIONED``) and ``info`` (what the method
reported: loss history, device...).

The job runs supervised (:mod:`scdrbench.common.supervise`): when the method runs past its time or
memory budget or fails, the same file is written as a *status record*: ``X_emb`` all NaN,
``uns['status']`` one of ``timeout``, ``out_of_memory``, ``error``, ``skipped`` and
``uns['status_message']`` its one line ("timeout after 100 min"). The score step, the tables
and the figures show it as such; the workflow goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
from importlib import metadata

import numpy as np

from scdrbench.common import embedding_file
from scdrbench.common import supervise as sv
from scdrbench.common.budget import Budget
from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.io import read_h5ad
from scdrbench.common.runtime import Stopwatch, cpu_seconds, peak_rss_mb, pin_threads, setup_logging
from scdrbench.methods import get_method, import_backend

log = logging.getLogger("scdrbench.embed")

#: distributions every embedding file records; each method module adds its own (VERSIONED)
VERSIONED = ("numpy", "scipy", "scikit-learn", "anndata", "scanpy")


def protein_counts(pca_adata):
    """The data set's protein (ADT) counts, cells x antibodies, or None."""
    if "protein_counts" not in pca_adata.obsm:
        return None
    return np.asarray(pca_adata.obsm["protein_counts"], dtype=np.float64)


def select_input(pca_adata, kind: str):
    """The matrix a method embeds: ``pca`` (all PCs), ``significant_pcs`` or ``hvg`` (X)."""
    if kind == "pca":
        return np.asarray(pca_adata.obsm["X_pca"], dtype=np.float32)
    if kind == "significant_pcs":
        n_sig = int(pca_adata.uns["n_significant_pcs"])
        return np.ascontiguousarray(pca_adata.obsm["X_pca"][:, :n_sig], dtype=np.float32)
    if kind == "hvg":
        return pca_adata.X
    raise ScdrbenchError(f"unknown method input {kind!r}; valid: pca, significant_pcs, hvg")


def _versions(algorithm: str) -> dict[str, str]:
    names = VERSIONED + tuple(get_method(algorithm).VERSIONED)
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _storable(value):
    """Make a method's ``info`` value storable in ``uns`` (h5ad)."""
    if isinstance(value, dict):
        return {str(k): _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        return arr if arr.dtype.kind in "biufU" else json.dumps(value, default=str)
    if value is None:
        return "None"
    if isinstance(value, (bool, int, float, str, np.generic, np.ndarray)):
        return value
    return str(value)


def run_method(
    X,
    *,
    algorithm: str,
    params: dict,
    seed: int,
    threads: int,
    mem_mb=None,
    obs_names=None,
    protein=None,
    budget_key: str | None = None,
):
    """Embed ``X`` with ``algorithm``; returns ``(embedding, info, fit_seconds)``.

    Checks the method's memory estimate against ``mem_mb`` (the job's allocation, or its
    memory budget, set by the config key ``budget_key``) first.
    """
    from scdrbench.common.memory import check_memory

    module = get_method(algorithm)
    need = module.estimate_memory_mb(X.shape[0], X.shape[1], **params)
    what = f"{algorithm} on {X.shape[0]} x {X.shape[1]}"
    check_memory(need, mem_mb=mem_mb, what=what, budget_key=budget_key)
    # Import the method's libraries before the clock starts: fit_seconds times the fit alone
    # (`import umap` alone imports TensorFlow when it is installed: 10-30 s).
    import_backend(module)
    info: dict = {}
    cpu_before = cpu_seconds()
    with Stopwatch() as sw:
        extra = {"obs_names": obs_names} if getattr(module, "NEEDS_OBS_NAMES", False) else {}
        if getattr(module, "NEEDS_PROTEIN", False):
            extra["protein"] = protein
        emb = module.embed(X, seed=seed, info=info, threads=threads, **extra, **params)
    info["fit_cpu_seconds"] = cpu_seconds() - cpu_before
    emb = np.asarray(emb, dtype=np.float32)
    dims = X.shape[1] if getattr(module, "OUTPUT_DIMS", 2) == "input" else 2
    if emb.shape != (X.shape[0], dims):
        raise RuntimeError(
            f"{algorithm} returned shape {emb.shape}, expected ({X.shape[0]}, {dims})"
        )
    if not np.all(np.isfinite(emb)):
        raise ScdrbenchError(
            f"{algorithm} produced non-finite coordinates (NaN/inf); try another seed or "
            "smaller learning rate in its params"
        )
    return emb, info, sw.seconds


def main(
    pca_path,
    output,
    *,
    dataset: str,
    method: str,
    entry: dict,
    seed: int = 0,
    threads: int = 1,
    mem_mb: float | None = None,
    log_path=None,
    budget: Budget | None = None,
    retry_token: str = "",
):
    """Read the data set's pca.h5ad, run the method, write the embedding file atomically."""
    setup_logging(log_path)
    pin_threads(threads)
    data = read_h5ad(pca_path, what="dataset file")
    X = select_input(data, entry["input"])
    log.info(
        "%s on %s: input %s, %d cells x %d dims, %d threads",
        method,
        dataset,
        entry["input"],
        X.shape[0],
        X.shape[1],
        threads,
    )
    emb, info, fit_seconds = run_method(
        X,
        algorithm=entry["algorithm"],
        params=entry["params"],
        seed=seed,
        threads=threads,
        mem_mb=mem_mb,
        obs_names=data.obs_names.to_numpy(),
        protein=protein_counts(data),
        # a method's own budget entry wins over its stage's: raising it always applies
        budget_key=f"budget.methods.{method}.mem" if budget and budget.mem_mb else None,
    )
    peak = peak_rss_mb()
    fit_cpu = float(info.pop("fit_cpu_seconds"))
    log.info(
        "fit %.2f s (%.1f CPU s: %.2f threads busy); peak RSS %.0f MB",
        fit_seconds,
        fit_cpu,
        fit_cpu / max(fit_seconds, 1e-9),
        peak,
    )
    fits, peaks, cpus = embedding_file.earlier_repeats(output, dataset, method)
    uns = _common_uns(dataset, method, entry, seed, threads, budget, retry_token)
    uns.update(
        {
            "status": "ok",
            "status_message": "ok",
            "input_dims": int(X.shape[1]),
            "fit_seconds": float(fit_seconds),
            "fit_cpu_seconds": fit_cpu,
            "cpu_seconds": cpu_seconds(),
            "peak_rss_mb": float(peak),
            "fit_seconds_repeats": np.asarray(fits + [fit_seconds], dtype=np.float64),
            "peak_rss_mb_repeats": np.asarray(peaks + [peak], dtype=np.float64),
            "fit_cpu_seconds_repeats": np.asarray(cpus + [fit_cpu], dtype=np.float64),
            "info": _storable(info),
        }
    )
    embedding_file.write(data, emb, uns, output)
    log.info("wrote %s", output)


def _common_uns(dataset, method, entry, seed, threads, budget, retry_token) -> dict:
    """The ``uns`` entries every embedding file has, a result or a status record."""
    return {
        "dataset_id": dataset,
        "method_id": method,
        "method_label": entry["label"],
        "algorithm": entry["algorithm"],
        "params": json.dumps(entry["params"], sort_keys=True),
        "seed": int(seed),
        "threads": int(threads),
        "input": entry["input"],
        "control": entry.get("control", ""),
        "budget": (budget or Budget()).token(),
        "retry_token": retry_token,
        "versions": _versions(entry["algorithm"]),
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
    }


def write_status_record(
    pca_path, output, *, dataset, method, entry, seed, threads, budget, retry_token, outcome
) -> None:
    """A failed job's embedding file: NaN coordinates, the status and its one-line message."""
    data = read_h5ad(pca_path, what="dataset file", backed=True)
    uns = _common_uns(dataset, method, entry, seed, threads, budget, retry_token)
    uns.update(
        {
            "status": outcome.status,
            "status_message": outcome.message,
            "input_dims": -1,
            "fit_seconds": float("nan"),
            "fit_cpu_seconds": float("nan"),
            "cpu_seconds": float(outcome.cpu_seconds),
            "peak_rss_mb": float(outcome.peak_rss_mb),
            "job_seconds": float(outcome.seconds),
            "fit_seconds_repeats": np.asarray([np.nan]),
            "peak_rss_mb_repeats": np.asarray([outcome.peak_rss_mb]),
        }
    )
    emb = np.full((data.n_obs, 2), np.nan, dtype=np.float32)
    embedding_file.write(data, emb, uns, output)
    data.file.close()


def _parse(argv):
    p = argparse.ArgumentParser(description="Embed one data set with one method")
    p.add_argument("--input", required=True, help="results/data/{dataset}/pca.h5ad")
    p.add_argument("--output", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--entry", required=True, help="the method's registry entry as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mem-mb", type=float, default=None, help="the job's memory allocation")
    p.add_argument("--log")
    p.add_argument("--retry-token", default="", help="stored in the file (see rules/embed.smk)")
    sv.add_budget_arguments(p)
    return p.parse_args(argv)


def cli(argv=None) -> None:
    """Supervise the job (the parent), or run it (``--child``)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    a = _parse(argv)

    def record(outcome, budget):
        write_status_record(
            a.input,
            a.output,
            dataset=a.dataset,
            method=a.method,
            entry=json.loads(a.entry),
            seed=a.seed,
            threads=a.threads,
            budget=budget,
            retry_token=a.retry_token,
            outcome=outcome,
        )

    sv.run_job(
        "scdrbench.stages.embed",
        argv,
        a,
        child=_child,
        record=record,
        what=f"{a.dataset}/{a.method}",
        outputs=[a.output],
        # a precomputed method's coordinates file is an input too (rules/embed.smk)
        inputs=[a.input, *filter(None, [json.loads(a.entry).get("params", {}).get("path")])],
        guard_retries=True,
    )


@cli_errors
def _child(a) -> None:
    main(
        a.input,
        a.output,
        dataset=a.dataset,
        method=a.method,
        entry=json.loads(a.entry),
        seed=a.seed,
        threads=a.threads,
        mem_mb=a.mem_budget_mb or a.mem_mb,
        log_path=a.log,
        budget=Budget(time_s=a.time_budget_s or None, mem_mb=a.mem_budget_mb or None),
        retry_token=a.retry_token,
    )


if __name__ == "__main__":
    cli()
