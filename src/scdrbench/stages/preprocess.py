"""Preprocess counts into ``results/data/{id}/pca.h5ad`` (scanpy).

Steps: library-size normalisation to ``target_sum``, log1p, highly variable genes (flavour
'seurat' on the log data), PCA with ``n_pcs`` components (no scaling, so sparse data stays
sparse), the number of significant PCs by the essay's resampling test, and Leiden labels for
data sets without an annotation.

Output contract: ``X`` log-normalised counts of the highly variable genes (CSR float32),
``obsm['X_pca']`` (n_cells x n_pcs float32), ``obs['label']`` (categorical; with
``labels.leiden_beside``, ``obs['leiden']`` beside it), ``uns``:
``n_significant_pcs``, ``significant_pcs`` (test details), ``pca_variance_ratio``,
``n_genes`` (genes before HVG selection), ``labels_from`` and ``provenance``.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.io import read_h5ad, write_h5ad
from scdrbench.common.runtime import Stopwatch, peak_rss_mb, pin_threads, setup_logging
from scdrbench.data.steps import knn_transformer, leiden_labels, significant_pcs, warn_n_hvg

__all__ = ["knn_transformer", "leiden_labels", "preprocess", "significant_pcs", "subsample"]

log = logging.getLogger("scdrbench.preprocess")


def _n_pcs(wanted: int, n_obs: int, n_vars: int) -> int:
    """``preprocess.n_pcs``, lowered (with a warning) to what the matrix allows."""
    n_pcs = min(wanted, n_obs - 1, n_vars - 1)
    if n_pcs < 2:
        raise ScdrbenchError(
            f"preprocess: only {n_obs} cells x {n_vars} genes; PCA needs at least 3 of each"
        )
    if n_pcs < wanted:
        log.warning(
            "preprocess.n_pcs %d lowered to %d: %d cells x %d genes allow at "
            "most %d principal components; set preprocess.n_pcs to %d or fewer to silence this",
            *(wanted, n_pcs, n_obs, n_vars, n_pcs, n_pcs),
        )
    return n_pcs


def preprocess(counts, *, params: dict, labels: dict, seed: int = 0, where: str = "the counts"):
    """Normalise, log, select HVGs, PCA, test PCs and label; returns the pca AnnData.

    ``counts`` is not modified; ``where`` names it in warnings.
    """
    import scanpy as sc

    adata = counts.copy()
    n_genes = adata.n_vars
    sc.pp.normalize_total(adata, target_sum=params["target_sum"])
    sc.pp.log1p(adata)
    n_hvg = warn_n_hvg(params["n_hvg"], n_genes, where=where)
    if n_hvg < n_genes:
        sc.pp.highly_variable_genes(adata, n_top_genes=n_hvg, flavor="seurat")
        adata = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    n_pcs = _n_pcs(params["n_pcs"], adata.n_obs, adata.n_vars)
    sc.pp.pca(adata, n_comps=n_pcs, random_state=seed, zero_center=True)
    sig_params = params["significant_pcs"]
    test = significant_pcs(
        adata.X,
        n_pcs=n_pcs,
        n_permutations=sig_params["n_permutations"],
        quantile=sig_params["quantile"],
        max_cells=sig_params["max_cells"],
        min_pcs=sig_params["min_pcs"],
        seed=seed,
    )
    log.info(
        "significant PCs: %d (of %d; permutation test on %d cells, %d permutations)",
        test["n_significant"],
        n_pcs,
        test["n_cells_tested"],
        test["n_permutations"],
    )
    out = sc.AnnData(
        X=sp.csr_matrix(adata.X, dtype=np.float32),
        obs=pd.DataFrame(index=adata.obs_names.copy()),
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    out.obsm["X_pca"] = np.asarray(adata.obsm["X_pca"], dtype=np.float32)
    if labels["from"] == "leiden":
        out.obs["label"] = leiden_labels(out, resolution=labels["resolution"], seed=seed)
        labels_from = "leiden clusters of the PCA kNN graph"
    else:
        if "label" not in counts.obs:
            raise ScdrbenchError(
                "preprocess: counts.h5ad has no obs['label'] although the dataset's labels are "
                f"'{labels['from']}'; re-run the prepare step"
            )
        out.obs["label"] = pd.Categorical(counts.obs["label"].astype(str).to_numpy())
        labels_from = labels["from"]
    if labels.get("leiden_beside") and labels["from"] != "leiden":
        # the data set's labels and Leiden clusters of its PCs, both scored (scdrbench.metrics)
        out.obs["leiden"] = leiden_labels(out, resolution=labels["resolution"], seed=seed)
    if "protein_counts" in counts.obsm:
        # CITE-seq: the protein counts travel on (ae_citeseq reads them), and RNA clusters are
        # kept beside the labels: scoring a method that sees the proteins against labels made
        # from them is circular, so label metrics are also computed against these
        out.obsm["protein_counts"] = counts.obsm["protein_counts"].loc[out.obs_names]
        out.obs["rna_leiden"] = leiden_labels(out, resolution=labels["resolution"], seed=seed)
    out.uns["n_significant_pcs"] = int(test.pop("n_significant"))
    out.uns["significant_pcs"] = test
    out.uns["pca_variance_ratio"] = np.asarray(adata.uns["pca"]["variance_ratio"])
    out.uns["n_genes"] = int(n_genes)
    out.uns["labels_from"] = labels_from
    out.uns["provenance"] = dict(counts.uns.get("provenance", {}))
    return out


def subsample(pca_adata, size: int, *, seed: int = 0):
    """A fixed-seed subsample of ``size`` cells (cell order kept) of a pca AnnData."""
    n = pca_adata.n_obs
    if size >= n:
        raise ScdrbenchError(
            f"subsample of {size} cells asked from a data set of {n} cells; use a smaller size "
            "in datasets.<id>.subsample"
        )
    rng = np.random.default_rng([seed, 21])
    rows = np.sort(rng.choice(n, size=size, replace=False))
    view = pca_adata[rows]
    # a backed parent (``read_h5ad(..., backed=True)``) is read only at the chosen rows
    out = view.to_memory() if pca_adata.isbacked else view.copy()
    out.uns["subsample"] = {"size": int(size), "of": int(n), "seed": int(seed)}
    return out


def main(
    counts_path,
    output,
    *,
    params,
    labels,
    seed=0,
    threads=1,
    log_path=None,
    route="auto",
    skip_labels=False,
):
    """Read ``counts_path``, preprocess, write ``output`` atomically.

    ``route``: ``memory`` (scanpy, :func:`preprocess`), ``stream`` (cell chunks,
    ``scdrbench.data.stream.preprocess_streamed``, same result in bounded memory) or ``auto``
    (streamed from ``STREAM_MIN_CELLS`` cells on). ``skip_labels`` (benchmarks only) labels every
    cell 'unlabelled' instead of clustering.
    """
    from scdrbench.data.stream import STREAM_MIN_CELLS, n_cells_of, preprocess_streamed

    setup_logging(log_path)
    pin_threads(threads)
    if route == "auto":
        route = "stream" if n_cells_of(counts_path) >= STREAM_MIN_CELLS else "memory"
    if route == "stream":
        with Stopwatch() as sw:
            info = preprocess_streamed(
                counts_path,
                output,
                params=params,
                labels=labels,
                seed=seed,
                skip_labels=skip_labels,
            )
        log.info(
            "preprocessed (streamed) %d cells in %.1f s; %d HVGs, %d PCs; wrote %s; peak RSS "
            "%.0f MB",
            info["n_cells"],
            sw.seconds,
            info["n_hvg"],
            info["n_pcs"],
            output,
            peak_rss_mb(),
        )
        return
    counts = read_h5ad(counts_path, what="counts file")
    log.info("read %s: %d cells x %d genes", counts_path, *counts.shape)
    if skip_labels:
        counts.obs["label"] = pd.Categorical(np.full(counts.n_obs, "unlabelled"))
        labels = {"from": "none (benchmark)"}
    with Stopwatch() as sw:
        out = preprocess(counts, params=params, labels=labels, seed=seed, where=counts_path)
    log.info("preprocessed in %.1f s; %d HVGs", sw.seconds, out.n_vars)
    write_h5ad(out, output)
    log.info("wrote %s; peak RSS %.0f MB", output, peak_rss_mb())


def main_subsample(pca_path, output, *, size, seed=0, log_path=None):
    """Write a fixed-seed subsample of a pca.h5ad, reading the parent backed (only those rows).

    At 1.3M cells this reads 100k rows in about 10 s at 0.75 GB peak instead of loading the
    parent's whole HVG matrix.
    """
    setup_logging(log_path)
    parent = read_h5ad(pca_path, what="pca file", backed=True)
    try:
        out = subsample(parent, size, seed=seed)
    finally:
        parent.file.close()
    write_h5ad(out, output)
    log.info(
        "wrote %s: %d of %d cells; peak RSS %.0f MB",
        output,
        out.n_obs,
        out.uns["subsample"]["of"],
        peak_rss_mb(),
    )


@cli_errors
def cli(argv=None) -> None:
    p = argparse.ArgumentParser(description="Preprocess counts.h5ad into pca.h5ad")
    p.add_argument("--counts")
    p.add_argument("--output", required=True)
    p.add_argument("--params", help="preprocess config section as JSON")
    p.add_argument("--labels", help="the dataset's labels entry as JSON")
    p.add_argument("--subsample-of", help="pca.h5ad to subsample instead of preprocessing")
    p.add_argument("--size", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log")
    p.add_argument(
        "--route",
        choices=["auto", "memory", "stream"],
        default="auto",
        help="in-memory scanpy, streamed in cell chunks, or auto (streamed for large inputs)",
    )
    p.add_argument("--no-labels", action="store_true", help="benchmarks: skip the labels")
    a = p.parse_args(argv)
    if a.subsample_of:
        main_subsample(a.subsample_of, a.output, size=a.size, seed=a.seed, log_path=a.log)
    else:
        main(
            a.counts,
            a.output,
            params=json.loads(a.params),
            labels=json.loads(a.labels),
            seed=a.seed,
            threads=a.threads,
            log_path=a.log,
            route=a.route,
            skip_labels=a.no_labels,
        )


if __name__ == "__main__":
    cli()
