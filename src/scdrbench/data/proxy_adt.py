"""Simulated CITE-seq protein for the paper run's stand-ins: antibody counts for the 1.3M proxy,
and a CBMC-sized CITE-seq set in GEO's layout.

**Antibodies for the proxy** (:func:`proxy_adt`): ``n_antibodies`` (13, as CBMC has) counts per
cell, driven by the proxy's own cell types (``scdrbench.data.proxy``: :func:`cell_types`,
:func:`doublets`, :func:`type_lineage` of the same spec, so no count matrix is read and the
counts describe exactly the cells of ``scratch/proxy_1m.h5``):

- every antibody has a background level (log-normal around ``BACKGROUND`` counts: ambient and
  non-specific binding, as CITE-seq's isotype controls show);
- every lineage raises one antibody ``LINEAGE_FOLD``-fold (a class marker, so protein keeps the
  proxy's global structure) and every type one more ``TYPE_FOLD``-fold, with a small per-type
  jitter: each type a mean ADT profile;
- per cell, a protein library factor (log-normal, sd 0.3) and Gamma-Poisson noise (shape 5);
  a doublet carries both types' profiles (0.8 each, as its RNA carries 1.6x a library).

1,306,127 cells x 13 antibodies is 17 million draws (seconds, about 0.5 GB at the peak); the file
is an h5ad of cells x antibodies (``X`` the counts, ``obs_names`` the proxy's barcodes), which
the data set entry names as ``adt_path`` (``scdrbench.data.readers.read_adt_table``).

**A CBMC-sized CITE-seq set** (:func:`write_citeseq_pair`): GEO's RNA file of GSE100866 cannot
be downloaded here, so the paper run's ``cbmc`` reads the project's CITE-seq simulator
(``scdrbench.data.synthetic``, the demo's ``synthetic_citeseq`` model) at CBMC's size, 8,617 cells
with 13 antibodies, written in GEO's layout (features in rows, barcodes in columns, gzipped
CSVs) so the ``geo_citeseq`` reader and its protein labels run unchanged on it.

CLI: ``python -m scdrbench.data.proxy_adt proxy OUT.h5ad [--n-cells N --seed S --version V]``
and ``python -m scdrbench.data.proxy_adt cbmc RNA.csv.gz ADT.csv.gz``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

import numpy as np

#: CBMC's panel size (GSE100866: 13 antibodies).
N_ANTIBODIES = 13
#: Background counts per antibody (median of the log-normal), and the marker folds.
BACKGROUND = 8.0
LINEAGE_FOLD = 15.0
TYPE_FOLD = 6.0
#: Gamma-Poisson shape of the per-cell noise, and sd of the per-cell protein library factor.
NOISE_SHAPE = 5.0
LIBRARY_SD = 0.3
#: CBMC's size (GSE100866 after filtering: 8,617 cells) and the simulator's settings for it.
CBMC_SPEC = {"n_cells": 8617, "n_genes": 2000, "n_types": 12, "n_antibodies": N_ANTIBODIES}


def type_means(spec, n_antibodies: int = N_ANTIBODIES) -> np.ndarray:
    """Mean ADT counts of every proxy type, ``(n_types, n_antibodies)`` (seeded by the spec)."""
    from scdrbench.data.proxy import type_lineage

    rng = np.random.default_rng([spec.seed, 31])
    log_mu = np.tile(rng.normal(np.log(BACKGROUND), 0.4, n_antibodies), (spec.n_types, 1))
    lineage = type_lineage(spec)
    lineage_marker = np.arange(spec.n_lineages) % n_antibodies
    type_marker = rng.integers(0, n_antibodies, spec.n_types)
    rows = np.arange(spec.n_types)
    log_mu[rows, lineage_marker[lineage]] += np.log(LINEAGE_FOLD)
    log_mu[rows, type_marker] += np.log(TYPE_FOLD)
    log_mu += rng.normal(0.0, 0.2, log_mu.shape)
    return np.exp(log_mu)


def proxy_adt(spec, n_antibodies: int = N_ANTIBODIES) -> np.ndarray:
    """ADT counts of every proxy cell, ``(n_cells, n_antibodies)`` int32, deterministic."""
    from scdrbench.data.proxy import cell_types, doublets

    means = type_means(spec, n_antibodies)
    types = cell_types(spec)
    second = doublets(spec)
    mu = means[types]
    is_doublet = second >= 0
    if is_doublet.any():
        mu[is_doublet] = 0.8 * (mu[is_doublet] + means[second[is_doublet]])
    rng = np.random.default_rng([spec.seed, 32])
    mu *= rng.lognormal(0.0, LIBRARY_SD, (spec.n_cells, 1))
    counts = rng.poisson(rng.gamma(NOISE_SHAPE, mu / NOISE_SHAPE))
    return counts.astype(np.int32)


def antibody_names(n: int = N_ANTIBODIES) -> list[str]:
    """``ADT01``-style names, as the demo's simulator names its antibodies."""
    from scdrbench.data.synthetic import antibody_names as names

    return names(n)


def write_proxy_adt(spec, path: str, n_antibodies: int = N_ANTIBODIES) -> dict:
    """Write the proxy's ADT counts as an h5ad (cells x antibodies), atomically."""
    import anndata as ad
    import pandas as pd

    from scdrbench.common.io import write_h5ad
    from scdrbench.data.synthetic import barcodes

    t0 = time.perf_counter()
    counts = proxy_adt(spec, n_antibodies)
    adata = ad.AnnData(
        X=counts.astype(np.float32),
        obs=pd.DataFrame(index=pd.Index(barcodes(spec.n_cells))),
        var=pd.DataFrame(index=pd.Index(antibody_names(n_antibodies))),
    )
    # the spec the counts follow: a proxy of another spec (version, size, seed) needs new ones
    adata.uns["proxy_spec"] = json.dumps(asdict(spec), sort_keys=True)
    write_h5ad(adata, path, compression="gzip")
    return {
        "path": str(path),
        "n_cells": spec.n_cells,
        "n_antibodies": n_antibodies,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _geo_csv(matrix, features, cells, path: str) -> None:
    """Features x cells as GEO writes them: a header of barcodes, one row per feature, gzip."""
    import gzip

    from scdrbench.common.io import atomic_path

    with atomic_path(path) as tmp, gzip.open(tmp, "wt", compresslevel=4) as fh:
        fh.write("," + ",".join(cells) + "\n")
        for name, row in zip(features, matrix):
            fh.write(name + "," + ",".join(map(str, row)) + "\n")


def adt_matches(spec, path) -> bool:
    """Whether the ADT file at ``path`` was made for ``spec`` (its ``uns['proxy_spec']``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            recorded = f["uns"]["proxy_spec"][()]
    except (OSError, KeyError):
        return False
    recorded = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
    return recorded == json.dumps(asdict(spec), sort_keys=True)


def write_citeseq_pair(rna_path: str, adt_path: str, *, seed: int = 0, **overrides) -> dict:
    """The CITE-seq simulator at CBMC's size (``CBMC_SPEC``, ``overrides`` on top) as GEO's pair
    of gzipped CSVs, RNA and ADT, features in rows; returns a summary."""
    from scdrbench.data.synthetic import SyntheticSpec, simulate_anndata

    t0 = time.perf_counter()
    spec = SyntheticSpec(**{**CBMC_SPEC, "seed": seed, **overrides})
    adata = simulate_anndata(spec)
    cells = list(adata.obs_names)
    rna = adata.X.T.tocsr().astype(np.int64).toarray()
    _geo_csv(rna, list(adata.var_names), cells, rna_path)
    protein = adata.obsm["protein_counts"]
    _geo_csv(protein.to_numpy(np.int64).T, list(protein.columns), cells, adt_path)
    return {
        "rna": rna_path,
        "adt": adt_path,
        "n_cells": spec.n_cells,
        "n_antibodies": spec.n_antibodies,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    px = sub.add_parser("proxy", help="ADT counts (h5ad) for the proxy of the same spec")
    px.add_argument("output")
    px.add_argument("--n-cells", type=int)
    px.add_argument("--n-genes", type=int)
    px.add_argument("--seed", type=int, default=0)
    px.add_argument("--version", type=int, help="the proxy's model version (default: current)")
    px.add_argument("--n-antibodies", type=int, default=N_ANTIBODIES)
    cb = sub.add_parser("cbmc", help="a CBMC-sized simulated CITE-seq pair in GEO's layout")
    cb.add_argument("rna")
    cb.add_argument("adt")
    cb.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.command == "proxy":
        from scdrbench.data.proxy import PROXY_VERSION, spec_for

        sizes = {k: v for k, v in (("n_cells", a.n_cells), ("n_genes", a.n_genes)) if v}
        spec = spec_for(a.version or PROXY_VERSION, seed=a.seed, **sizes)
        out = write_proxy_adt(spec, a.output, a.n_antibodies)
    else:
        out = write_citeseq_pair(a.rna, a.adt, seed=a.seed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
