"""Run one embedding method on one data set and write ``results/embed/{dataset}/{method}.h5ad``.

Output contract: ``obs_names`` and ``obs['label']`` of the data set (same order),
``obsm['X_emb']`` (n_cells x 2 float32), ``uns``: ``dataset_id``, ``method_id``, ``algorithm``,
``params`` (JSON string), ``seed``, ``threads``, ``input`` (what was embedded and its width),
``fit_seconds`` (the method's fit alone), ``peak_rss_mb`` (the kernel's high-water mark of
this process, ``getrusage``), ``versions`` and ``info`` (what the method reported: loss history,
device...). No count matrix is stored.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
from importlib import metadata

import numpy as np
import pandas as pd

from scripts.common.errors import ScdrbenchError, cli_errors
from scripts.common.io import read_h5ad, write_h5ad
from scripts.common.runtime import Stopwatch, peak_rss_mb, pin_threads, setup_logging
from scripts.methods import get_method

log = logging.getLogger("scdrbench.embed")

VERSIONED = ("numpy", "scipy", "scikit-learn", "anndata", "scanpy", "openTSNE", "umap-learn")
VERSIONED_TF = ("tensorflow-cpu", "tensorflow", "keras")


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
    names = VERSIONED + (
        VERSIONED_TF if algorithm.startswith(("ae_", "scvis", "tsne_ae", "parametric")) else ()
    )
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


def _earlier_repeats(output, dataset: str, method: str) -> tuple[list, list]:
    """Fit seconds and peaks of earlier repeats of this same job.

    Snakemake's ``benchmark: repeat(...)`` runs the command again in the same job, over the
    previous repeat's output (outputs are only removed before the job starts), so each repeat's
    in-script numbers are carried forward and the timing table can pair them with Snakemake's
    row of the same repeat.
    """
    import h5py

    if not os.path.exists(output):
        return [], []
    try:
        with h5py.File(output, "r") as f:
            uns = f["uns"]
            same = (
                uns["dataset_id"][()].decode() == dataset
                and uns["method_id"][()].decode() == method
            )
            if not same:
                return [], []
            return list(uns["fit_seconds_repeats"][()]), list(uns["peak_rss_mb_repeats"][()])
    except (OSError, KeyError):
        return [], []


def run_method(X, *, algorithm: str, params: dict, seed: int, threads: int, mem_mb=None):
    """Embed ``X`` with ``algorithm``; returns ``(embedding, info, fit_seconds)``.

    Checks the method's memory estimate against ``mem_mb`` (the job's allocation) first.
    """
    from scripts.common.memory import check_memory

    module = get_method(algorithm)
    need = module.estimate_memory_mb(X.shape[0], X.shape[1], **params)
    check_memory(need, mem_mb=mem_mb, what=f"{algorithm} on {X.shape[0]} x {X.shape[1]}")
    # Import the method's libraries before the clock starts: fit_seconds times the fit alone
    # (`import umap` alone imports TensorFlow when it is installed: 10-30 s).
    for name in getattr(module, "BACKEND_MODULES", ()):
        importlib.import_module(name)
    info: dict = {}
    with Stopwatch() as sw:
        emb = module.embed(X, seed=seed, info=info, threads=threads, **params)
    emb = np.asarray(emb, dtype=np.float32)
    if emb.shape != (X.shape[0], 2):
        raise RuntimeError(f"{algorithm} returned shape {emb.shape}, expected ({X.shape[0]}, 2)")
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
):
    """Read the data set's pca.h5ad, run the method, write the embedding file atomically."""
    import anndata as ad

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
    )
    peak = peak_rss_mb()
    log.info("fit %.2f s; peak RSS %.0f MB", fit_seconds, peak)
    fits, peaks = _earlier_repeats(output, dataset, method)
    out = ad.AnnData(
        obs=pd.DataFrame({"label": data.obs["label"].to_numpy()}, index=data.obs_names.copy()),
        obsm={"X_emb": emb},
    )
    out.obs["label"] = out.obs["label"].astype("category")
    out.uns.update(
        {
            "dataset_id": dataset,
            "method_id": method,
            "method_label": entry["label"],
            "algorithm": entry["algorithm"],
            "params": json.dumps(entry["params"], sort_keys=True),
            "seed": int(seed),
            "threads": int(threads),
            "input": entry["input"],
            "input_dims": int(X.shape[1]),
            "fit_seconds": float(fit_seconds),
            "peak_rss_mb": float(peak),
            "fit_seconds_repeats": np.asarray(fits + [fit_seconds], dtype=np.float64),
            "peak_rss_mb_repeats": np.asarray(peaks + [peak], dtype=np.float64),
            "versions": _versions(entry["algorithm"]),
            "info": _storable(info),
            "host": platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
        }
    )
    write_h5ad(out, output)
    log.info("wrote %s", output)


@cli_errors
def cli(argv=None) -> None:
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
    a = p.parse_args(argv)
    main(
        a.input,
        a.output,
        dataset=a.dataset,
        method=a.method,
        entry=json.loads(a.entry),
        seed=a.seed,
        threads=a.threads,
        mem_mb=a.mem_mb,
        log_path=a.log,
    )


if __name__ == "__main__":
    cli()
