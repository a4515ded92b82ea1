"""Streamed preparation and preprocessing of matrices too large to hold (the 1.3M mouse brain).

Longer than 400 lines on purpose: the chunk reader, the prepare pass and the three preprocess
passes share their chunking and layout handling, and the module is read as one algorithm.

Everything runs on cell chunks read from HDF5 (a Cell Ranger file, v2 or v3, or an h5ad with a
CSR or dense ``X``); the full matrix never exists in memory.

``write_counts_h5ad`` (the prepare step): checks each chunk (integers, non-negative), drops
cells with zero counts (counted in the log), carries CITE-seq protein counts (``obsm``) and
appends the chunk to a CSR ``X`` in the output
h5ad (``anndata.io.write_elem`` + ``sparse_dataset(...).append``).

``preprocess_streamed`` (the preprocess step), the same computation as
``scdrbench.stages.preprocess.preprocess`` (scanpy in memory), in three passes over the cells:

1. library-size normalisation and log1p of each chunk with scanpy's own functions (per-cell
   operations, so chunking changes nothing), and per-gene sums and sums of squares of the
   normalised values (float64): the per-gene mean and variance that scanpy's 'seurat' flavour
   of highly variable genes uses (it undoes the log with ``expm1``), then the same binned
   dispersion normalisation and top-``n_hvg`` cut (:func:`seurat_hvg`);
2. the log-normalised HVG submatrix, appended chunk by chunk to the output's ``X``, while the
   per-gene sums and the Gram matrix ``X^T X`` of the HVGs (n_hvg x n_hvg) accumulate; PCA is
   the eigendecomposition of the covariance ``(X^T X - n mu mu^T) / (n - 1)``: the exact
   principal axes (what scanpy's implicitly centred sparse PCA computes), in O(n_hvg^2) memory;
3. the scores ``(X - mu) V``, reading the HVG matrix back from the output in chunks.

Memory: one chunk of counts, the HVG Gram matrix (32 MB for 2,000 HVGs), the n x 50 scores
and the cells kept for the significant-PC test (``max_cells``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.io import atomic_path
from scdrbench.data.readers import (
    check_unique_barcodes,
    check_values,
    fix_advice,
    open_h5,
    tenx_h5_layout,
    unique_gene_names,
)

log = logging.getLogger("scdrbench.stream")

# Data sets with at least this many cells are prepared and preprocessed in chunks.
STREAM_MIN_CELLS = 200_000
CHUNK_CELLS = 20_000


class CellChunks:
    """Cell chunks of a compressed sparse matrix on disk whose ``indptr`` runs over cells.

    A Cell Ranger matrix (one column per cell, genes x cells CSC) and an h5ad CSR ``X``
    (cells x genes) are the same arrays read this way; a dense h5ad ``X`` is sliced by rows.
    """

    def __init__(self, group, n_cells: int, n_genes: int, *, gene_mask=None, path=""):
        self.group, self.path = group, path
        self.n_cells, self.n_genes = int(n_cells), int(n_genes)
        self.dense = not hasattr(group, "keys")
        self.indptr = None if self.dense else group["indptr"][:].astype(np.int64)
        self.gene_mask = None if gene_mask is None or np.all(gene_mask) else gene_mask

    @property
    def n_vars(self) -> int:
        return self.n_genes if self.gene_mask is None else int(self.gene_mask.sum())

    def read(self, start: int, stop: int) -> sp.csr_matrix:
        """Cells ``start:stop`` as CSR float32 (genes masked)."""
        try:
            if self.dense:
                X = sp.csr_matrix(np.asarray(self.group[start:stop], dtype=np.float32))
            else:
                a, b = self.indptr[start], self.indptr[stop]
                X = sp.csr_matrix(
                    (
                        self.group["data"][a:b].astype(np.float32, copy=False),
                        self.group["indices"][a:b],
                        self.indptr[start : stop + 1] - a,
                    ),
                    shape=(stop - start, self.n_genes),
                )
        except OSError as err:
            raise ScdrbenchError(
                f"{self.path}: cannot read cells {start}-{stop} ({err}); the file is truncated "
                f"or damaged: {fix_advice(self.path)}"
            ) from None
        return X[:, self.gene_mask] if self.gene_mask is not None else X

    def __call__(self, chunk_size: int = CHUNK_CELLS):
        """Yield ``(start, stop, CSR chunk)`` over all cells."""
        for start in range(0, self.n_cells, chunk_size):
            stop = min(start + chunk_size, self.n_cells)
            yield start, stop, self.read(start, stop)


def _h5ad_matrix(f, path, key: str = "X"):
    if key not in f:
        raise ScdrbenchError(f"{path}: no '{key}' in the file; not an h5ad file")
    X = f[key]
    if hasattr(X, "keys"):
        enc = X.attrs.get("encoding-type", "")
        if enc != "csr_matrix":
            raise ScdrbenchError(
                f"{path}: '{key}' is stored as {enc or 'an unknown group'}; streaming needs CSR "
                "(write it with X = scipy.sparse.csr_matrix(X))"
            )
        n_cells, n_genes = (int(x) for x in X.attrs["shape"])
    else:
        n_cells, n_genes = X.shape
    return X, n_cells, n_genes


def _read_index(f, key: str) -> np.ndarray:
    from anndata.io import read_elem

    return np.asarray(read_elem(f[key]).index, dtype=str)


@contextmanager
def open_cells(path: str | Path):
    """Open a Cell Ranger HDF5 or an h5ad; yield ``(CellChunks, barcodes, var DataFrame)``."""
    path = Path(path)
    f = open_h5(path)
    try:
        if "obs" in f and "var" in f:
            X, n_cells, n_genes = _h5ad_matrix(f, path)
            barcodes = _read_index(f, "obs")
            from anndata.io import read_elem

            var = read_elem(f["var"])
            chunks = CellChunks(X, n_cells, n_genes, path=path)
        else:
            meta = tenx_h5_layout(f, path)
            mask = meta["gene_mask"]
            chunks = CellChunks(
                f[meta["group"]], meta["n_cells"], meta["n_genes"], gene_mask=mask, path=path
            )
            barcodes = meta["barcodes"]
            var = pd.DataFrame({"gene_ids": meta["gene_ids"][mask]})
            var.index = pd.Index(meta["gene_names"][mask])
            log.info("%s: Cell Ranger %s layout, group '%s'", path, meta["layout"], meta["group"])
        var.index = pd.Index(np.asarray(var.index, dtype=str))
        yield chunks, np.asarray(barcodes, dtype=str), var
    finally:
        f.close()


def n_cells_of(path: str | Path) -> int:
    """Number of cells in a Cell Ranger HDF5 or h5ad, read from the metadata only."""
    with open_cells(path) as (chunks, _, _):
        return chunks.n_cells


def _new_h5ad(f, X_first) -> object:
    """Start ``X`` with its first chunk; ``indptr`` is stored as int64 from the start.

    anndata writes a small chunk's ``indptr`` as int32 and refuses to append past 2^31 non-zeros
    ("written with a 32 bit intptr"): 1.3M brain cells hold about 2.2 billion.
    """
    from anndata.io import sparse_dataset, write_elem

    write_elem(f, "X", X_first)
    group = f["X"]
    if group["indptr"].dtype != np.int64:
        indptr = group["indptr"][:].astype(np.int64)
        del group["indptr"]
        group.create_dataset("indptr", data=indptr, maxshape=(None,), chunks=True)
    return sparse_dataset(group)


def _finish_h5ad(f, obs: pd.DataFrame, var: pd.DataFrame, *, obsm=None, uns=None) -> None:
    from anndata.io import write_elem

    write_elem(f, "obs", obs)
    write_elem(f, "var", var)
    write_elem(f, "obsm", obsm or {})
    for key in ("varm", "obsp", "varp", "layers"):
        write_elem(f, key, {})
    write_elem(f, "uns", uns or {})
    f.attrs["encoding-type"] = "anndata"
    f.attrs["encoding-version"] = "0.1.0"


def write_counts_h5ad(
    source: str | Path,
    output: str | Path,
    *,
    max_cells: int | None = None,
    chunk_size: int = CHUNK_CELLS,
    labels: pd.Series | None = None,
    protein: pd.DataFrame | None = None,
    uns: dict | None = None,
) -> dict:
    """Stream a Cell Ranger HDF5 (or h5ad) into ``counts.h5ad``, chunk by chunk, atomically.

    Checks counts (integers, non-negative) and barcodes (unique), drops cells with zero counts,
    makes gene names unique. ``labels`` (indexed by barcode) becomes ``obs['label']``;
    ``protein`` (cells x antibodies, indexed by barcode, checked by the caller) becomes
    ``obsm['protein_counts']``, and cells it does not list are dropped.
    Returns ``{'n_cells', 'n_genes', 'n_zero_dropped'}``.
    """
    import h5py

    with open_cells(source) as (chunks, barcodes, var), atomic_path(output) as tmp:
        n = min(chunks.n_cells, max_cells) if max_cells else chunks.n_cells
        barcodes = barcodes[:n]
        check_unique_barcodes(barcodes, where=str(source))
        var.index = unique_gene_names(var.index, where=str(source))
        keep = np.zeros(n, dtype=bool)
        listed = np.ones(n, bool) if protein is None else pd.Index(barcodes).isin(protein.index)
        with h5py.File(tmp, "w") as f:
            X = None
            for start in range(0, n, chunk_size):
                stop = min(start + chunk_size, n)
                block = chunks.read(start, stop)
                check_values(block.data, where=f"{source} (cells {start}-{stop})")
                nonzero = np.diff(block.indptr) > 0
                nonzero[nonzero] = np.asarray(block[nonzero].sum(axis=1)).ravel() > 0
                nonzero &= listed[start:stop]
                keep[start:stop] = nonzero
                block = block[nonzero]
                block.sort_indices()
                if X is None:
                    X = _new_h5ad(f, block)
                else:
                    X.append(block)
                if (start // chunk_size) % 10 == 0:
                    log.info("prepared %d of %d cells", stop, n)
            obs = pd.DataFrame(index=pd.Index(barcodes[keep], name=None))
            if labels is not None:
                obs["label"] = pd.Categorical(labels.reindex(obs.index).astype(str).to_numpy())
            obsm = None if protein is None else {"protein_counts": protein.loc[obs.index]}
            _finish_h5ad(f, obs, var, obsm=obsm, uns=uns)
    n_zero = int((~keep & listed).sum())
    if (~listed).any():
        log.warning("dropped %d cells without protein counts", int((~listed).sum()))
    if n_zero:
        log.warning("dropped %d cells with zero counts", n_zero)
    log.info("wrote %s: %d cells x %d genes (streamed)", output, int(keep.sum()), chunks.n_vars)
    return {"n_cells": int(keep.sum()), "n_genes": chunks.n_vars, "n_zero_dropped": n_zero}


# --- preprocessing -----------------------------------------------------------------------


def normalise_log(block: sp.csr_matrix, target_sum: float) -> sp.csr_matrix:
    """scanpy's ``normalize_total(target_sum)`` then ``log1p`` on a chunk of cells."""
    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(X=block.astype(np.float32))
    sc.pp.normalize_total(tmp, target_sum=target_sum)
    sc.pp.log1p(tmp)
    return tmp.X


def seurat_hvg(mean: np.ndarray, var: np.ndarray, n_top: int, n_bins: int = 20) -> np.ndarray:
    """Boolean mask of the top ``n_top`` genes by scanpy's 'seurat' flavour.

    ``mean`` and ``var`` (unbiased) are per-gene statistics of the normalised, not logged,
    counts. Dispersion ``log(var / mean)``, binned by ``log1p(mean)`` into ``n_bins`` equal-width
    bins, z-scored within each bin (a bin of one gene gets a normalised dispersion of 1); the
    genes at or above the ``n_top``-th highest normalised dispersion are kept (scanpy 1.11).
    """
    mean = np.array(mean, dtype=np.float64)
    mean[mean == 0] = 1e-12
    dispersion = np.asarray(var, dtype=np.float64) / mean
    dispersion[dispersion == 0] = np.nan
    dispersion = np.log(dispersion)
    df = pd.DataFrame({"means": np.log1p(mean), "dispersions": dispersion})
    df["mean_bin"] = pd.cut(df["means"], bins=n_bins)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0
    per_gene = stats.loc[df["mean_bin"]].set_index(df.index)
    norm = ((df["dispersions"] - per_gene["avg"]) / per_gene["dev"]).to_numpy()
    finite = norm[~np.isnan(norm)]
    n_top = min(n_top, finite.size)
    cutoff = np.sort(finite)[::-1][n_top - 1]
    return np.nan_to_num(norm, nan=-np.inf) >= cutoff


def _syrk(gram: np.ndarray, dense: np.ndarray) -> None:
    """``gram += dense.T @ dense`` (upper triangle), float32 BLAS into a float64 total."""
    from scipy.linalg.blas import ssyrk

    gram += ssyrk(1.0, np.asfortranarray(dense.T), trans=0, lower=0)


def preprocess_streamed(
    counts_path: str | Path,
    output: str | Path,
    *,
    params: dict,
    labels: dict,
    seed: int = 0,
    chunk_size: int = CHUNK_CELLS,
    skip_labels: bool = False,
) -> dict:
    """Write ``pca.h5ad`` from ``counts_path`` in cell chunks; same contract as the in-memory
    ``scdrbench.stages.preprocess.preprocess``. Returns a summary dict (cells, HVGs, PCs)."""
    import h5py
    from anndata.io import read_elem

    from scdrbench.data.steps import significant_pcs, warn_n_hvg

    target = params["target_sum"]
    with open_cells(counts_path) as (chunks, barcodes, var):
        n, n_genes = chunks.n_cells, chunks.n_vars
        mean, gvar = _gene_moments(chunks, chunk_size, target)
        n_hvg = warn_n_hvg(params["n_hvg"], n_genes, where=str(counts_path))
        hvg = seurat_hvg(mean, gvar, n_hvg) if n_hvg < n_genes else np.ones(n_genes, bool)
        hvg_idx = np.flatnonzero(hvg)
        p = hvg_idx.size
        log.info("%d highly variable genes of %d", p, n_genes)
        k = min(params["n_pcs"], n - 1, p - 1)
        if k < 2:
            raise ScdrbenchError(
                f"preprocess: only {n} cells x {p} genes; PCA needs at least 3 of each"
            )
        sig = params["significant_pcs"]
        rng = np.random.default_rng([seed, 11])
        max_cells = sig["max_cells"]
        rows = np.sort(rng.choice(n, size=max_cells, replace=False)) if n > max_cells else None
        with atomic_path(output) as tmp, h5py.File(tmp, "w") as f:
            gram, h1, sampled = _hvg_pass(f, chunks, chunk_size, target, hvg_idx, rows)
            mu, V, ratio = _pca_axes(gram, h1, n, k)
            scores = _pc_scores(CellChunks(f["X"], n, p, path=tmp), chunk_size, mu, V)
            log.info("PCA: %d components, %.1f%% of the HVG variance", k, 100 * ratio.sum())
            sub = sp.vstack(sampled, format="csr")
            test = significant_pcs(
                sub,
                n_pcs=k,
                n_permutations=sig["n_permutations"],
                quantile=sig["quantile"],
                max_cells=max_cells,
                min_pcs=sig["min_pcs"],
                seed=seed,
            )
            del sampled, sub
            log.info("significant PCs: %d of %d", test["n_significant"], k)
            obs = pd.DataFrame(index=pd.Index(barcodes))
            labels_from = _labels(counts_path, obs, scores, labels, seed, skip_labels)
            with open_h5(counts_path) as cf:
                provenance = read_elem(cf["uns"]).get("provenance", {}) if "uns" in cf else {}
                obsm = read_elem(cf["obsm"]) if "obsm" in cf else {}
            reuse = "label" if labels_from.startswith("leiden") else "leiden"
            obsm = {"X_pca": scores, **_protein_beside(obsm, obs, scores, labels, seed, reuse)}
            uns = {
                "n_significant_pcs": int(test.pop("n_significant")),
                "significant_pcs": test,
                "pca_variance_ratio": ratio,
                "n_genes": int(n_genes),
                "labels_from": labels_from,
                "provenance": dict(provenance),
                "preprocess_route": "streamed",
            }
            _finish_h5ad(
                f,
                obs,
                pd.DataFrame(index=var.index[hvg_idx]),
                obsm=obsm,
                uns=uns,
            )
    return {"n_cells": n, "n_hvg": p, "n_pcs": k, "n_significant_pcs": uns["n_significant_pcs"]}


def _pc_scores(hv, chunk_size: int, mu, V) -> np.ndarray:
    """Pass 3: every cell's scores on the principal axes ``V`` (HVG matrix centred by ``mu``)."""
    scores = np.empty((hv.n_cells, V.shape[1]), dtype=np.float32)
    shift = mu @ V
    for start, stop, block in hv(chunk_size):
        scores[start:stop] = block @ V - shift
    return scores


def _protein_beside(counts_obsm: dict, obs, scores, labels: dict, seed: int, reuse: str) -> dict:
    """CITE-seq, as the in-memory route does: the protein counts travel on (ae_citeseq reads
    them) and ``obs['rna_leiden']`` (Leiden of the PCs) is kept beside the labels; the Leiden
    clusters already made (``obs[reuse]``: the labels or the ``leiden`` beside them) are reused
    rather than computed twice."""
    from scdrbench.data.steps import leiden_labels

    if "protein_counts" not in counts_obsm:
        return {}
    if reuse in obs:
        obs["rna_leiden"] = obs[reuse]
    else:
        tmp_ad = _scores_anndata(scores, obs.index)
        obs["rna_leiden"] = leiden_labels(tmp_ad, resolution=labels["resolution"], seed=seed)
    return {"protein_counts": counts_obsm["protein_counts"]}


def _gene_moments(chunks, chunk_size: int, target: float):
    """Pass 1: per-gene mean and (unbiased) variance of the normalised counts."""
    n, n_genes = chunks.n_cells, chunks.n_vars
    s1 = np.zeros(n_genes)
    s2 = np.zeros(n_genes)
    for _start, stop, block in chunks(chunk_size):
        x = normalise_log(block, target)
        x.data = np.expm1(x.data)
        s1 += np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        x.data = x.data.astype(np.float64) ** 2
        s2 += np.asarray(x.sum(axis=0)).ravel()
        log.info("pass 1 (gene statistics): %d of %d cells", stop, n)
    mean = s1 / n
    gvar = (s2 / n - mean**2) * (n / (n - 1))
    return mean, gvar


def _hvg_pass(f, chunks, chunk_size: int, target: float, hvg_idx, rows):
    """Pass 2: the HVG submatrix written into ``f``'s ``X``, its Gram matrix (upper triangle)
    and column sums accumulated, and the cells of ``rows`` (all when None) kept for the
    significant-PC test: ``(gram, column sums, kept blocks)``."""
    n, p = chunks.n_cells, hvg_idx.size
    sampled = []
    gram = np.zeros((p, p))
    h1 = np.zeros(p)
    X = None
    for start, stop, block in chunks(chunk_size):
        x = normalise_log(block, target)[:, hvg_idx].tocsr()
        x.sort_indices()
        if X is None:
            X = _new_h5ad(f, x)
        else:
            X.append(x)
        dense = x.toarray()
        h1 += dense.sum(axis=0, dtype=np.float64)
        _syrk(gram, dense)
        if rows is None:
            sampled.append(x)
        else:
            lo, hi = np.searchsorted(rows, [start, stop])
            sampled.append(x[rows[lo:hi] - start])
        log.info("pass 2 (HVG matrix, Gram): %d of %d cells", stop, n)
    return gram, h1, sampled


def _pca_axes(gram, h1, n: int, k: int):
    """The first ``k`` principal axes from the HVG matrix's Gram matrix (upper triangle) and
    column sums: ``(column means, axes, explained variance ratios)``."""
    mu = h1 / n
    gram = np.triu(gram) + np.triu(gram, 1).T
    cov = (gram - n * np.outer(mu, mu)) / (n - 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    V = evecs[:, :k]
    # deterministic signs: the largest loading of each axis positive
    flip = np.sign(V[np.abs(V).argmax(axis=0), np.arange(k)])
    V = V * flip
    total_var = float(np.trace(cov))
    ratio = evals[:k] / total_var
    return mu, V, ratio


def _labels(counts_path, obs, scores, labels: dict, seed: int, skip_labels: bool) -> str:
    """Fill ``obs['label']`` (and ``obs['leiden']`` beside the data set's own labels when asked);
    returns where the labels come from."""
    from anndata.io import read_elem

    from scdrbench.data.steps import leiden_labels

    n = len(obs)
    if skip_labels:
        obs["label"] = pd.Categorical(np.full(n, "unlabelled"))
        labels_from = "none (benchmark)"
    elif labels["from"] == "leiden":
        tmp_ad = _scores_anndata(scores, obs.index)
        obs["label"] = leiden_labels(tmp_ad, resolution=labels["resolution"], seed=seed)
        labels_from = "leiden clusters of the PCA kNN graph"
    else:
        with open_h5(counts_path) as cf:
            cobs = read_elem(cf["obs"]) if "obs" in cf else pd.DataFrame()
        if "label" not in cobs:
            raise ScdrbenchError(
                f"preprocess: {counts_path} has no obs['label'] although the dataset's "
                f"labels are '{labels['from']}'; re-run the prepare step"
            )
        obs["label"] = pd.Categorical(cobs["label"].astype(str).to_numpy())
        labels_from = labels["from"]
        if labels.get("leiden_beside"):
            tmp_ad = _scores_anndata(scores, obs.index)
            obs["leiden"] = leiden_labels(tmp_ad, resolution=labels["resolution"], seed=seed)
    return labels_from


def _scores_anndata(scores: np.ndarray, index: pd.Index):
    import anndata as ad

    return ad.AnnData(obsm={"X_pca": scores}, obs=pd.DataFrame(index=index))
