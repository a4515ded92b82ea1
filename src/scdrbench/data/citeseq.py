"""CITE-seq: protein (ADT) counts beside the RNA, protein-based labels, and the species split of
mixed-species sets (CBMC, GEO GSE100866).

- Any layout gives the antibody counts as a cells x antibodies table (:func:`attach_protein`
  checks it against the RNA cells and stores it as ``obsm['protein_counts']``): a GEO-style CSV
  (antibodies in rows) or an h5ad given as ``adt_path``/``adt_url``, the "Antibody Capture"
  features of a Cell Ranger v3 HDF5, an ``obsm`` key of an h5ad (``adt_obsm``), the simulator's.
- Mixed species (only when the RNA genes carry both ``HUMAN_`` and ``MOUSE_`` prefixes, plus
  ``ERCC_`` spike-ins, as in CBMC): human genes are kept with the prefix stripped; a cell whose
  species-assigned UMIs are mostly mouse is a mouse cell (the experiment spiked in mouse cells)
  and is dropped, as in the Seurat CITE-seq vignette. Single-species sets are left as they are.
- Labels come from the protein side, so they do not come from the RNA embeddings being scored:
  the antibody (ADT) counts are CLR-normalised per cell, a kNN graph is built on them, Leiden
  clusters it, and each cluster is named by its marker antibodies (those whose mean CLR in the
  cluster stands highest above the other cells, e.g. ``CD3+CD4+``); clusters with the same name
  are one population.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.runtime import import_umap_without_tensorflow
from scdrbench.data.readers import unique_gene_names

log = logging.getLogger("scdrbench.cbmc")

HUMAN, MOUSE, ERCC = "HUMAN_", "MOUSE_", "ERCC_"


def split_species(rna, *, mouse_threshold: float = 0.5, source: str = "RNA counts"):
    """Human genes of ``rna`` (prefix stripped) and per-cell species statistics.

    Returns ``(human AnnData, mouse_fraction array)``; ``mouse_fraction`` is the share of a
    cell's human + mouse UMIs that fall on mouse genes (ERCC rows are ignored). ``rna`` is not
    modified.
    """
    names = rna.var_names.astype(str)
    is_h = names.str.startswith(HUMAN)
    is_m = names.str.startswith(MOUSE)
    if not (is_h.any() and is_m.any()):
        log.info(
            "species: not a mixed-species set (no %s and %s genes); no cell dropped", HUMAN, MOUSE
        )
        out = rna.copy()
        out.obs["mouse_fraction"] = np.zeros(out.n_obs, dtype=np.float32)
        out.obs["is_mouse"] = False
        return out, np.zeros(out.n_obs)
    X = sp.csr_matrix(rna.X)
    human_umis = np.asarray(X[:, np.flatnonzero(is_h)].sum(axis=1)).ravel()
    mouse_umis = np.asarray(X[:, np.flatnonzero(is_m)].sum(axis=1)).ravel()
    total = human_umis + mouse_umis
    frac = np.divide(mouse_umis, total, out=np.zeros_like(total, dtype=float), where=total > 0)
    human = rna[:, np.flatnonzero(is_h)].copy()
    human.var_names = pd.Index(names[is_h].str.slice(len(HUMAN)))
    human.var_names = unique_gene_names(human.var_names, where=f"{source} (human genes)")
    human.obs["mouse_fraction"] = frac.astype(np.float32)
    human.obs["is_mouse"] = frac > mouse_threshold
    log.info(
        "species: %d human genes, %d mouse genes, %d ERCC rows dropped; %d of %d cells are "
        "mouse (mouse share of UMIs > %.2f)",
        int(is_h.sum()),
        int(is_m.sum()),
        int(names.str.startswith(ERCC).sum()),
        int(human.obs["is_mouse"].sum()),
        human.n_obs,
        mouse_threshold,
    )
    return human, frac


def clr(counts: np.ndarray) -> np.ndarray:
    """Centred log-ratio per cell, Seurat's CLR (``margin = 2``).

    ``log1p(x / exp(sum(log1p(x)) / n_features))`` for each cell's antibody vector ``x``.
    """
    x = np.asarray(counts, dtype=np.float64)
    geo = np.exp(np.log1p(x).sum(axis=1, keepdims=True) / x.shape[1])
    return np.log1p(x / geo)


def name_clusters(
    values: np.ndarray, clusters: np.ndarray, markers: list[str], *, top: int = 2, min_z=0.5
) -> dict:
    """Name each cluster by its marker antibodies: ``{cluster: 'CD3+CD4+'}``.

    A marker's score in a cluster is the difference of its mean CLR in the cluster and among
    the other cells, in units of its overall standard deviation; the ``top`` markers scoring
    above ``min_z`` name the cluster, in panel order (``'negative'`` when none does).
    """
    sd = values.std(axis=0) + 1e-9
    names = {}
    for c in np.unique(clusters):
        inside = clusters == c
        if inside.all():
            names[c] = "all"
            continue
        z = (values[inside].mean(axis=0) - values[~inside].mean(axis=0)) / sd
        chosen = sorted(i for i in np.argsort(-z)[:top] if z[i] > min_z)
        names[c] = "".join(f"{markers[i]}+" for i in chosen) or "negative"
    return names


def adt_labels(
    adt_counts: np.ndarray, markers: list[str], *, resolution: float = 1.0, seed: int = 0
) -> tuple[pd.Categorical, np.ndarray]:
    """Protein labels: Leiden clusters of the kNN graph (15 neighbours) of CLR-normalised ADT,
    named by marker antibodies. Returns ``(labels, raw Leiden cluster ids)``."""
    import anndata as ad
    import scanpy as sc

    values = clr(adt_counts)
    tmp = ad.AnnData(obsm={"X_clr": values.astype(np.float32)})
    from scdrbench.data.steps import knn_transformer

    import_umap_without_tensorflow()
    sc.pp.neighbors(
        tmp, use_rep="X_clr", random_state=seed, transformer=knn_transformer(tmp.n_obs, seed=seed)
    )
    sc.tl.leiden(tmp, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2)
    clusters = tmp.obs["leiden"].astype(int).to_numpy()
    names = name_clusters(values, clusters, markers)
    labels = pd.Categorical([names[c] for c in clusters])
    log.info(
        "ADT labels: %d Leiden clusters -> %d named populations: %s",
        len(names),
        len(labels.categories),
        ", ".join(f"{k} ({v})" for k, v in pd.Series(labels).value_counts().items()),
    )
    return labels, clusters


def read_citeseq(
    rna_path: str,
    adt_path: str,
    *,
    resolution: float = 1.0,
    mouse_threshold: float = 0.5,
    seed: int = 0,
):
    """Read a GEO CITE-seq pair into the counts AnnData: human genes, mouse cells dropped,
    ``obs['label']`` from ADT clusters, ``obs['adt_leiden']``, ``obsm['protein_counts']``."""
    from scdrbench.data.readers import read_geo_csv

    rna = read_geo_csv(rna_path)
    adt = read_geo_csv(adt_path)
    common = rna.obs_names.intersection(adt.obs_names, sort=False)
    if len(common) == 0:
        raise ScdrbenchError(
            f"{adt_path}: no ADT barcode matches a barcode of {rna_path}; the two files must "
            "come from the same experiment"
        )
    if len(common) < rna.n_obs or len(common) < adt.n_obs:
        log.warning(
            "RNA has %d cells, ADT %d; keeping the %d in both", rna.n_obs, adt.n_obs, len(common)
        )
    human, _ = split_species(rna[common], mouse_threshold=mouse_threshold, source=str(rna_path))
    keep = ~human.obs["is_mouse"].to_numpy()
    n_mouse = int((~keep).sum())
    human = human[keep].copy()
    log.info("dropped %d mouse cells; %d human cells remain", n_mouse, human.n_obs)
    adt_x = adt[human.obs_names].X
    adt_x = adt_x.toarray() if sp.issparse(adt_x) else np.asarray(adt_x)
    markers = list(map(str, adt.var_names))
    labels, clusters = adt_labels(adt_x, markers, resolution=resolution, seed=seed)
    human.obs["label"] = labels
    human.obs["adt_leiden"] = pd.Categorical(clusters.astype(str))
    human.obsm["protein_counts"] = pd.DataFrame(
        adt_x.astype(np.float32), index=human.obs_names, columns=markers
    )
    human.uns["cbmc"] = {
        "n_mouse_cells_dropped": n_mouse,
        "mouse_threshold": mouse_threshold,
        "adt_leiden_seed": seed,
        "adt_leiden_resolution": resolution,
    }
    return human


#: Share of the RNA cells that must have protein counts (``datasets.<id>.adt_min_match``).
MIN_MATCH = 0.9


def attach_protein(adata, protein: pd.DataFrame, *, source: str, min_match: float = MIN_MATCH):
    """Check ``protein`` (cells x antibodies, raw counts) against ``adata``'s cells and store it
    as ``obsm['protein_counts']``; cells without protein counts are dropped (when at least
    ``min_match`` of them have some). Returns the (possibly smaller) AnnData."""
    if protein.shape[1] < 2:
        raise ScdrbenchError(
            f"{source}: {protein.shape[1]} antibody; protein labels and ae_citeseq need at "
            "least 2 antibodies"
        )
    index = pd.Index(protein.index.astype(str))
    if index.has_duplicates:
        raise ScdrbenchError(f"{source}: barcode {index[index.duplicated()][0]!r} is listed twice")
    values = protein.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise ScdrbenchError(f"{source}: protein counts must be finite and non-negative")
    if not np.all(np.mod(values, 1) == 0):
        raise ScdrbenchError(
            f"{source}: protein counts hold non-integer values; give raw ADT counts (not CLR)"
        )
    matched = adata.obs_names.isin(index)
    share = float(matched.mean()) if len(matched) else 0.0
    if share < min_match:
        raise ScdrbenchError(
            f"{source}: only {int(matched.sum())} of {adata.n_obs} RNA cells ({share:.0%}) have "
            f"protein counts, below datasets.<id>.adt_min_match {min_match:.0%}; the barcodes "
            "must name the same cells (check suffixes such as '-1')"
        )
    if not matched.all():
        log.warning("%d RNA cells without protein counts dropped", int((~matched).sum()))
        adata = adata[matched].copy()
    table = pd.DataFrame(values, index=index, columns=[str(c) for c in protein.columns])
    adata.obsm["protein_counts"] = table.loc[adata.obs_names].astype(np.float32)
    log.info("protein: %d antibodies for %d cells", table.shape[1], adata.n_obs)
    return adata


def protein_labels(adata, *, resolution: float, seed: int):
    """``obs['label']`` (named ADT clusters) and ``obs['adt_leiden']`` from ``obsm['protein_counts']``."""
    if "protein_counts" not in adata.obsm:
        raise ScdrbenchError(
            "labels: {from: adt_clusters} needs protein counts; give the data set's adt_path, "
            "adt_url or adt_obsm (or a 10x HDF5 with Antibody Capture features)"
        )
    table = adata.obsm["protein_counts"]
    labels, clusters = adt_labels(
        np.asarray(table, dtype=np.float64), list(table.columns), resolution=resolution, seed=seed
    )
    adata.obs["label"] = labels
    adata.obs["adt_leiden"] = pd.Categorical(clusters.astype(str))
    return adata
