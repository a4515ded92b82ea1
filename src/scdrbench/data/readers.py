"""Readers for count matrices on disk: GEO CSV, Cell Ranger HDF5 (v2, v3), matrix folder, h5ad.

Every reader returns an AnnData of raw counts (cells x genes, CSR float32) with unique cell
barcodes as ``obs_names`` and gene names as ``var_names`` (made unique), and raises a one-line
:class:`~scdrbench.common.errors.ScdrbenchError` naming the file and the fix for bad input:
truncated gzip, truncated or non-HDF5 files, missing HDF5 groups, non-integer or negative
counts, duplicated barcodes. Cells with zero counts are dropped later (``check_counts``).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError

log = logging.getLogger("scdrbench.readers")


def fix_advice(path) -> str:
    """What to do about a damaged input: a download is fetched again, a local file is the
    user's to replace (the advice never says "downloaded" for a file given as ``path``)."""
    if "results/downloads/" in str(path).replace("\\", "/"):
        return "delete it and re-run (it is downloaded again), or replace it with a complete copy"
    return "replace it with a complete copy (a local file, given as the data set's path)"


# Errors a damaged gzip or CSV raises while being read.
READ_ERRORS = (EOFError, OSError, zlib.error, UnicodeDecodeError, pd.errors.ParserError)


def _open_text(path: Path):
    """A text handle on ``path``, transparently gunzipped when it ends in ``.gz``."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _require(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ScdrbenchError(f"{what} {path} does not exist; check the dataset's path or url")
    return path


def check_values(values: np.ndarray, *, where: str) -> None:
    """Counts must be finite, non-negative integers; else a one-line error naming ``where``."""
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)):
        raise ScdrbenchError(f"{where}: counts must be finite (found NaN or infinity)")
    if values.min() < 0:
        raise ScdrbenchError(
            f"{where}: negative count {values.min():g}; scdrbench expects raw UMI counts"
        )
    frac = np.mod(values, 1)
    if np.any(frac != 0):
        bad = values[np.flatnonzero(frac)[0]]
        raise ScdrbenchError(
            f"{where}: non-integer count {bad:g}; scdrbench expects raw UMI counts (not "
            "normalised or log-transformed data)"
        )


def check_unique_barcodes(barcodes, *, where: str) -> None:
    """Duplicated cell barcodes are an error (labels and subsamples are joined on them)."""
    idx = pd.Index(barcodes)
    if not idx.is_unique:
        dup = idx[idx.duplicated()]
        raise ScdrbenchError(
            f"{where}: {len(dup)} duplicated cell barcode(s), first {dup[0]!r}; barcodes must be "
            "unique (make them unique, e.g. by a sample suffix, before adding the data set)"
        )


def unique_gene_names(names, *, where: str) -> pd.Index:
    """Gene names made unique as anndata's ``var_names_make_unique`` does (the repeats of a name
    get ``-1``, ``-2``, ...), with one warning line naming ``where``; unique names pass as they
    are."""
    from anndata.utils import make_index_unique

    index = pd.Index(np.asarray(names, dtype=str))
    if index.is_unique:
        return index
    repeats = np.flatnonzero(index.duplicated())
    renamed = make_index_unique(index.copy())
    first = repeats[0]
    log.warning(
        "%s: %d gene name(s) repeat an earlier one (%d distinct names, first %r); renamed "
        "%r -> %r and so on (anndata's var_names_make_unique) so that every gene is kept",
        where,
        len(repeats),
        index[repeats].nunique(),
        index[first],
        index[first],
        renamed[first],
    )
    return pd.Index(renamed)


def _make_anndata(X, barcodes, genes, var: pd.DataFrame | None = None, *, where: str):
    import anndata as ad

    genes = unique_gene_names(genes, where=where)
    var = var if var is not None else pd.DataFrame(index=genes)
    var.index = genes
    return ad.AnnData(
        X=sp.csr_matrix(X, dtype=np.float32),
        obs=pd.DataFrame(index=pd.Index(np.asarray(barcodes, dtype=str))),
        var=var,
    )


# --- GEO CSV: features in rows, barcodes in columns, first column the feature name ---------


def read_geo_header(path: str | Path) -> list[str]:
    """The cell barcodes of a GEO CSV (its first line without the first field)."""
    path = _require(path, "CSV file")
    try:
        with _open_text(path) as fh:
            header = next(csv.reader([fh.readline()]))
    except READ_ERRORS as err:
        raise ScdrbenchError(
            f"{path}: cannot read the header ({type(err).__name__}: {err}); the file is "
            f"damaged or truncated: {fix_advice(path)}"
        ) from None
    return header[1:]


def read_geo_csv(path: str | Path, *, chunksize: int = 2000):
    """Read a GEO-style count CSV (``.csv`` or ``.csv.gz``), features x cells, as cells x genes.

    Read in blocks of ``chunksize`` feature rows, each checked (integers, non-negative) and made
    sparse, so a 36,000 x 8,600 file never exists as one dense table.
    """
    path = _require(path, "CSV file")
    barcodes = read_geo_header(path)
    if not barcodes:
        raise ScdrbenchError(f"{path}: no cell columns in the header; expected GEO layout")
    check_unique_barcodes(barcodes, where=str(path))
    blocks, genes = [], []
    try:
        reader = pd.read_csv(path, index_col=0, chunksize=chunksize, compression="infer")
        for i, block in enumerate(reader):
            if block.shape[1] != len(barcodes):
                raise ScdrbenchError(f"{path}: row block {i} has {block.shape[1]} columns")
            bad = [c for c, t in block.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
            if bad:
                col = bad[0]
                vals = pd.to_numeric(block[col], errors="coerce")
                row = block.index[vals.isna().to_numpy()][0]
                raise ScdrbenchError(
                    f"{path}: non-integer count {block.at[row, col]!r} (feature {row!r}, cell "
                    f"{col!r}); scdrbench expects raw UMI counts"
                )
            values = block.to_numpy()
            check_values(values.ravel(), where=f"{path} (rows {i * chunksize + 1}-)")
            blocks.append(sp.csr_matrix(values.astype(np.float32)))
            genes.extend(map(str, block.index))
    except READ_ERRORS as err:
        raise ScdrbenchError(
            f"{path}: cannot read ({type(err).__name__}: {err}); the file is damaged or "
            f"truncated: {fix_advice(path)}"
        ) from None
    if not blocks:
        raise ScdrbenchError(f"{path}: no feature rows; expected GEO layout (features x cells)")
    X = sp.vstack(blocks, format="csr").T.tocsr()
    log.info("read %s: %d features x %d cells", path, len(genes), len(barcodes))
    return _make_anndata(X, barcodes, genes, where=str(path))


# --- Cell Ranger HDF5 ------------------------------------------------------------------------


def _decode(a) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(str) if a.dtype.kind in "SO" else a


def tenx_h5_layout(f, path) -> dict:
    """Describe an open Cell Ranger HDF5 file: group, layout, barcodes, genes, gene mask.

    v3: group ``matrix`` with ``features/{id,name,feature_type}``; v2: one group per genome
    (e.g. ``mm10``) with ``genes`` and ``gene_names``. Both store one column per cell, so
    ``indptr`` runs over cells and ``indices`` are gene rows.
    """
    needed = ("data", "indices", "indptr", "shape", "barcodes")
    if "matrix" in f and "features" in f["matrix"]:
        g = f["matrix"]
        feat = g["features"]
        ids, names = _decode(feat["id"][:]), _decode(feat["name"][:])
        types = _decode(feat["feature_type"][:]) if "feature_type" in feat else None
        mask = types == "Gene Expression" if types is not None else np.ones(len(ids), bool)
        antibodies = types == "Antibody Capture" if types is not None else np.zeros(len(ids), bool)
        layout, group = "v3", "matrix"
    else:
        groups = [k for k in f if hasattr(f[k], "keys") and "genes" in f[k]]
        if len(groups) != 1:
            raise ScdrbenchError(
                f"{path}: not a Cell Ranger matrix: no 'matrix' group (v3 layout) and "
                f"{'several' if groups else 'no'} genome group with 'genes' (v2 layout); "
                f"groups found: {', '.join(f.keys()) or 'none'}. Use source h5ad or tenx_mtx "
                "if it is another format"
            )
        group = groups[0]
        g = f[group]
        ids, names = _decode(g["genes"][:]), _decode(g["gene_names"][:])
        mask = np.ones(len(ids), bool)
        antibodies = np.zeros(len(ids), bool)
        layout = "v2"
    missing = [k for k in needed if k not in g]
    if missing:
        raise ScdrbenchError(
            f"{path}: group '{group}' lacks {', '.join(missing)}; the file is not a complete "
            f"Cell Ranger matrix: {fix_advice(path)}"
        )
    n_genes, n_cells = (int(x) for x in g["shape"][:])
    return {
        "group": group,
        "layout": layout,
        "n_cells": n_cells,
        "n_genes": n_genes,
        "barcodes": _decode(g["barcodes"][:]),
        "gene_ids": ids,
        "gene_names": names,
        "gene_mask": mask,
        "antibody_mask": antibodies,
    }


def open_h5(path: str | Path, what: str = "HDF5 file"):
    """``h5py.File(path, 'r')`` with a clear error for a truncated or non-HDF5 file."""
    import h5py

    path = _require(path, what)
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ScdrbenchError(
            f"{path}: not a readable HDF5 file ({err}); it is truncated or of another format: "
            f"{fix_advice(path)}"
        ) from None


def read_tenx_h5(path: str | Path):
    """Read a Cell Ranger filtered matrix HDF5 (v2 or v3) into memory; genes only (v3)."""
    with open_h5(path, "10x HDF5 file") as f:
        meta = tenx_h5_layout(f, path)
        g = f[meta["group"]]
        try:
            data, indices, indptr = g["data"][:], g["indices"][:], g["indptr"][:]
        except OSError as err:
            raise ScdrbenchError(
                f"{path}: cannot read the matrix ({err}); the file is truncated: {fix_advice(path)}"
            ) from None
    check_values(data, where=str(path))
    check_unique_barcodes(meta["barcodes"], where=str(path))
    X = sp.csr_matrix(
        (data.astype(np.float32), indices, indptr), shape=(meta["n_cells"], meta["n_genes"])
    )
    mask, antibodies = meta["gene_mask"], meta["antibody_mask"]
    protein = X[:, antibodies].toarray() if antibodies.any() else None
    if not mask.all():
        X = X[:, mask]
    var = pd.DataFrame({"gene_ids": meta["gene_ids"][mask]})
    log.info("read %s (%s layout): %d cells x %d genes", path, meta["layout"], *X.shape)
    adata = _make_anndata(X, meta["barcodes"], meta["gene_names"][mask], var, where=str(path))
    if protein is not None:
        # CITE-seq in one file: the "Antibody Capture" features (checked by prepare)
        adata.obsm["protein_counts"] = pd.DataFrame(
            protein, index=adata.obs_names, columns=meta["gene_names"][antibodies]
        )
        log.info("%s: %d Antibody Capture features", path, protein.shape[1])
    return adata


def read_adt_table(path: str | Path) -> pd.DataFrame:
    """Protein (ADT) counts as cells x antibodies: an h5ad (its ``X``) or a GEO-style CSV with
    the antibodies in rows and the barcodes in columns (as GSE100866's ADT file)."""
    path = _require(path, "ADT file")
    if str(path).endswith(".h5ad"):
        adata = read_h5ad_counts(path)
    else:
        adata = read_geo_csv(path)
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    return pd.DataFrame(X, index=adata.obs_names.astype(str), columns=adata.var_names.astype(str))


# --- Cell Ranger matrix folder ----------------------------------------------------------------


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return candidate
    return None


def read_tenx_mtx(folder: str | Path):
    """Read a Cell Ranger matrix folder: ``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]`` and
    ``features.tsv[.gz]`` (v3) or ``genes.tsv`` (v2); genes x cells in the file."""
    from scipy.io import mmread

    folder = _require(folder, "matrix folder")
    mtx = _find(folder, ("matrix.mtx",))
    bc = _find(folder, ("barcodes.tsv",))
    feat = _find(folder, ("features.tsv", "genes.tsv"))
    if not folder.is_dir() or mtx is None or bc is None or feat is None:
        raise ScdrbenchError(
            f"{folder}: not a Cell Ranger matrix folder; it needs matrix.mtx, barcodes.tsv and "
            "features.tsv (or genes.tsv), optionally gzipped"
        )
    try:
        with gzip.open(mtx, "rb") if mtx.suffix == ".gz" else open(mtx, "rb") as fh:
            M = mmread(fh)
        barcodes = pd.read_csv(bc, sep="\t", header=None, dtype=str)[0].to_numpy()
        features = pd.read_csv(feat, sep="\t", header=None, dtype=str)
    except (*READ_ERRORS, ValueError) as err:
        raise ScdrbenchError(
            f"{folder}: cannot read the matrix folder ({type(err).__name__}: {err}); a file is "
            f"damaged or truncated: {fix_advice(folder)}"
        ) from None
    M = sp.csc_matrix(M)
    if M.shape != (len(features), len(barcodes)):
        raise ScdrbenchError(
            f"{mtx}: matrix is {M.shape[0]} x {M.shape[1]} but the folder lists "
            f"{len(features)} features and {len(barcodes)} barcodes"
        )
    check_values(M.data, where=str(mtx))
    check_unique_barcodes(barcodes, where=str(bc))
    mask = np.ones(len(features), bool)
    if features.shape[1] >= 3:
        mask = (features[2] == "Gene Expression").to_numpy()
    names = features[1] if features.shape[1] >= 2 else features[0]
    X = M.T.tocsr()[:, mask]
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()[mask]})
    log.info("read %s: %d cells x %d genes", folder, *X.shape)
    return _make_anndata(X, barcodes, names.to_numpy()[mask], var, where=str(feat))


# --- h5ad -------------------------------------------------------------------------------------


def read_h5ad_counts(path: str | Path):
    """Read an h5ad of raw counts: ``layers['counts']`` when present, else ``X``."""
    import anndata as ad

    path = _require(path, "h5ad file")
    with open_h5(path, "h5ad file") as f:
        if "X" not in f and "layers" not in f:
            raise ScdrbenchError(f"{path}: an HDF5 file without 'X'; not an h5ad file")
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # anndata raises many types for a damaged file
        raise ScdrbenchError(
            f"{path}: not a readable h5ad file ({type(err).__name__}: {err}): {fix_advice(path)}"
        ) from None
    if "counts" in adata.layers:
        adata.X = adata.layers["counts"]
        log.info("%s: using layers['counts'] as the counts", path)
    adata.layers.clear()
    adata.raw = None
    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    check_values(values, where=str(path))
    check_unique_barcodes(adata.obs_names, where=str(path))
    adata.X = sp.csr_matrix(X, dtype=np.float32)
    adata.var_names = unique_gene_names(adata.var_names, where=str(path))
    return adata
