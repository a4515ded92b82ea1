"""Writers of tiny, format-faithful input files for the data tests (no network)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_geo_csv(path, matrix: np.ndarray, features, barcodes) -> Path:
    """GEO layout: features in rows, barcodes in columns, first column the feature name."""
    df = pd.DataFrame(matrix, index=list(features), columns=list(barcodes))
    path = Path(path)
    df.to_csv(path, compression="gzip" if path.suffix == ".gz" else None)
    return path


def citeseq_pair(tmp: Path, *, n_human=60, n_mouse=8, seed=0):
    """A tiny CBMC-like RNA + ADT pair: HUMAN_/MOUSE_/ERCC_ rows, mouse cells, 3 protein types.

    Returns (rna path, adt path, barcodes, is_mouse, protein type per cell).
    """
    rng = np.random.default_rng(seed)
    n = n_human + n_mouse
    barcodes = [f"CELL{i:04d}" for i in range(n)]
    is_mouse = np.zeros(n, bool)
    is_mouse[rng.choice(n, n_mouse, replace=False)] = True
    genes_h = [f"HUMAN_G{i}" for i in range(30)]
    genes_m = [f"MOUSE_G{i}" for i in range(20)]
    ercc = ["ERCC_00001", "ERCC_00002"]
    h = rng.poisson(3.0, size=(30, n))
    m = rng.poisson(0.2, size=(20, n))
    h[:, is_mouse] = rng.poisson(0.2, size=(30, int(is_mouse.sum())))
    m[:, is_mouse] = rng.poisson(4.0, size=(20, int(is_mouse.sum())))
    rna = np.vstack([h, m, rng.poisson(1.0, size=(2, n))])
    rna_path = write_geo_csv(tmp / "rna.csv.gz", rna, genes_h + genes_m + ercc, barcodes)
    markers = ["CD3", "CD4", "CD8", "CD14", "CD19", "CD56"]
    ptype = rng.integers(0, 3, size=n)  # 0: CD3+CD4+ T, 1: CD14+ mono, 2: CD19+ B
    base = rng.poisson(5, size=(len(markers), n))
    high = {0: [0, 1], 1: [3], 2: [4]}
    for t, rows in high.items():
        for r in rows:
            base[r, ptype == t] += rng.poisson(300, size=int((ptype == t).sum()))
    adt_path = write_geo_csv(tmp / "adt.csv.gz", base, markers, barcodes)
    return rna_path, adt_path, barcodes, is_mouse, ptype


def write_mtx_folder(folder, X_cells_by_genes: sp.spmatrix, barcodes, genes, *, v3=True, gz=True):
    """A Cell Ranger matrix folder (v3: features.tsv.gz with 3 columns; v2: genes.tsv)."""
    from scipy.io import mmwrite

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def opener(name):
        return gzip.open(folder / f"{name}.gz", "wb") if gz else open(folder / name, "wb")

    with opener("matrix.mtx") as fh:
        mmwrite(fh, sp.coo_matrix(X_cells_by_genes.T).astype(np.int64))
    with opener("barcodes.tsv") as fh:
        fh.write("".join(f"{b}\n" for b in barcodes).encode())
    if v3:
        rows = [f"ENSG{i:05d}\t{g}\tGene Expression\n" for i, g in enumerate(genes)]
        with opener("features.tsv") as fh:
            fh.write("".join(rows).encode())
    else:
        rows = [f"ENSG{i:05d}\t{g}\n" for i, g in enumerate(genes)]
        with opener("genes.tsv") as fh:
            fh.write("".join(rows).encode())
    return folder


def truncate(path, fraction=0.5) -> Path:
    """Cut a file to ``fraction`` of its bytes, in place."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
