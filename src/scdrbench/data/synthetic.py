"""Seeded simulator of UMI counts with cell-type structure, streamed in chunks of cells.

Model (a compact Splatter-like negative binomial, Zappia et al. 2017):

- gene base expression proportions ``p_g`` from a log-normal (few genes high, most low);
- each cell type up- or down-regulates its own programme of genes (a random ``program_fraction``
  of genes, log fold changes ~ N(+-1.5, 0.5)), giving proportions ``p_tg``;
- types are grouped into lineages (``n_lineages``, default ``ceil(n_types / 3)`` from 4 types on,
  contiguous blocks of type indices), and each lineage adds a shared programme drawn the same way,
  so sister types are closer to each other than to other lineages: a global structure that KNC and
  CPD can measure, as with real cell types (with one lineage there is no shared programme);
- library sizes ``L_c`` log-normal around ``median_library_size`` (sd 0.5 on the log scale);
- counts ``x_cg ~ NB(mean = L_c p_tg, dispersion = 1 / shape)``, drawn as Poisson(Gamma).

CITE-seq (``n_antibodies`` > 0): every type expresses its own one or two marker antibodies
(about 20-fold above the others' level) on a shared background, counts NB around each cell's
type means times a per-cell protein library factor (log-normal, sd 0.3). The last type is split
into two populations that differ in protein only (``{type}_hi`` / ``{type}_lo``: antibody 1
20-fold apart, the same RNA profile), as CD4 naive and memory T cells do; ``obs['cell_type']``
holds the split, ``obs['rna_type']`` the RNA types. The counts are ``obsm['protein_counts']``
(cells x ``ADT01``...); the RNA counts are the same as without antibodies.

Cells are generated ``chunk_size`` at a time, so 1M cells x 2,000 genes needs only one chunk in
memory; writers stream the chunks to h5ad (anndata's sparse append) or 10x HDF5 (v2 or v3).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the simulator (all seeded by ``seed``)."""

    n_cells: int = 10_000
    n_genes: int = 2_000
    n_types: int = 8
    seed: int = 0
    median_library_size: float | None = None
    program_fraction: float = 0.05
    dispersion_shape: float = 2.0
    chunk_size: int = 20_000
    n_lineages: int | None = None
    n_antibodies: int = 0

    def library_median(self) -> float:
        """Default: about 15% of the gene count, within 300-5,000 UMIs (realistic sparsity)."""
        if self.median_library_size is not None:
            return float(self.median_library_size)
        return float(np.clip(0.15 * self.n_genes, 300, 5000))

    def lineage_count(self) -> int:
        """Default: ``ceil(n_types / 3)`` lineages from 4 types on, else one."""
        if self.n_lineages is not None:
            return max(1, min(int(self.n_lineages), self.n_types))
        return int(np.ceil(self.n_types / 3)) if self.n_types >= 4 else 1


def type_lineages(spec: SyntheticSpec) -> np.ndarray:
    """Lineage index of every cell type: contiguous, near-equal blocks of type indices."""
    blocks = np.array_split(np.arange(spec.n_types), spec.lineage_count())
    lineage = np.empty(spec.n_types, dtype=np.int64)
    for i, block in enumerate(blocks):
        lineage[block] = i
    return lineage


def type_profiles(spec: SyntheticSpec) -> np.ndarray:
    """Expression proportions per cell type, shape ``(n_types, n_genes)``, rows sum to 1."""
    rng = np.random.default_rng([spec.seed, 1])
    base = rng.lognormal(mean=0.0, sigma=1.5, size=spec.n_genes)
    n_prog = max(1, int(round(spec.program_fraction * spec.n_genes)))
    logp = np.tile(np.log(base), (spec.n_types, 1))
    for t in range(spec.n_types):
        genes = rng.choice(spec.n_genes, size=n_prog, replace=False)
        sign = rng.choice([-1.0, 1.0], size=n_prog, p=[0.3, 0.7])
        logp[t, genes] += sign * rng.normal(1.5, 0.5, size=n_prog)
    if spec.lineage_count() > 1:
        lin_rng = np.random.default_rng([spec.seed, 5])
        lineage = type_lineages(spec)
        for g in range(spec.lineage_count()):
            genes = lin_rng.choice(spec.n_genes, size=n_prog, replace=False)
            sign = lin_rng.choice([-1.0, 1.0], size=n_prog, p=[0.3, 0.7])
            shift = sign * lin_rng.normal(1.5, 0.5, size=n_prog)
            logp[np.ix_(lineage == g, genes)] += shift
    prof = np.exp(logp)
    return prof / prof.sum(axis=1, keepdims=True)


def cell_types(spec: SyntheticSpec) -> np.ndarray:
    """Cell-type index of every cell: unequal type sizes (Dirichlet proportions), seeded."""
    rng = np.random.default_rng([spec.seed, 2])
    props = rng.dirichlet(np.full(spec.n_types, 3.0))
    return rng.choice(spec.n_types, size=spec.n_cells, p=props)


def simulate_chunks(spec: SyntheticSpec) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
    """Yield ``(counts CSR int32 (chunk x genes), type index)`` chunks covering all cells.

    Chunk ``i`` uses its own seeded stream, so the output does not depend on the chunk size
    being the same across calls only through the cell order: same spec, same data.
    """
    prof = type_profiles(spec).astype(np.float32)
    types = cell_types(spec)
    lib_rng = np.random.default_rng([spec.seed, 3])
    libs = lib_rng.lognormal(np.log(spec.library_median()), 0.5, size=spec.n_cells)
    shape = np.float32(spec.dispersion_shape)
    for i, start in enumerate(range(0, spec.n_cells, spec.chunk_size)):
        stop = min(start + spec.chunk_size, spec.n_cells)
        rng = np.random.default_rng([spec.seed, 4, i])
        mean = prof[types[start:stop]] * libs[start:stop, None].astype(np.float32)
        lam = rng.standard_gamma(shape, size=mean.shape, dtype=np.float32)
        lam *= mean / shape
        counts = rng.poisson(lam).astype(np.int32)
        yield sp.csr_matrix(counts), types[start:stop]


def barcodes(n: int) -> np.ndarray:
    """10x-looking unique barcodes ``AAAC...-1``, deterministic."""
    alphabet = np.array(list("ACGT"))
    idx = np.arange(n, dtype=np.int64)
    digits = [(idx >> (2 * k)) & 3 for k in range(16)]
    letters = alphabet[np.stack(digits[::-1], axis=1)]
    return np.array(["".join(row) + "-1" for row in letters])


def gene_names(n: int) -> np.ndarray:
    """``Gene00001``-style names."""
    return np.array([f"Gene{i + 1:05d}" for i in range(n)])


def type_names(spec: SyntheticSpec) -> np.ndarray:
    """``type_0`` ... names."""
    return np.array([f"type_{t}" for t in range(spec.n_types)])


def synthetic_obs(spec: SyntheticSpec, types: np.ndarray):
    """``obs`` of the simulated cells: ``cell_type`` and its ``lineage``, indexed by barcode."""
    import pandas as pd

    names = type_names(spec)
    lineage_names = np.array([f"lineage_{g}" for g in range(spec.lineage_count())])
    return pd.DataFrame(
        {
            "cell_type": pd.Categorical(names[types], categories=names),
            "lineage": pd.Categorical(
                lineage_names[type_lineages(spec)[types]], categories=lineage_names
            ),
        },
        index=barcodes(spec.n_cells),
    )


def antibody_names(n: int) -> list[str]:
    """``ADT01``-style antibody names."""
    return [f"ADT{i + 1:02d}" for i in range(n)]


def simulate_protein(spec: SyntheticSpec, types: np.ndarray):
    """``(counts (cells x antibodies) int, protein-only group of each cell: 0, 1 or -1)``."""
    rng = np.random.default_rng([spec.seed, 6])
    n_ab = spec.n_antibodies
    base = rng.lognormal(np.log(5.0), 0.5, size=n_ab)
    means = np.tile(base, (spec.n_types, 1))
    for t in range(spec.n_types):
        markers = rng.choice(n_ab, size=min(2, n_ab), replace=False)
        means[t, markers] *= 20.0
    group = np.full(len(types), -1)
    last = np.flatnonzero(types == spec.n_types - 1)
    group[last] = rng.integers(0, 2, size=len(last))
    mu = means[types] * rng.lognormal(0.0, 0.3, size=(len(types), 1))
    # the protein-only split: antibody 1 (index 0) 20-fold up in half of the last type
    mu[group == 1, 0] *= 20.0
    shape = 5.0
    counts = rng.poisson(rng.gamma(shape, mu / shape))
    return counts.astype(np.int64), group


def simulate_anndata(spec: SyntheticSpec):
    """The whole data set in memory as AnnData (counts float32, obs cell_type and lineage;
    ``obsm['protein_counts']`` with ``n_antibodies``)."""
    import anndata as ad
    import pandas as pd

    mats, types = zip(*simulate_chunks(spec))
    X = sp.vstack(mats, format="csr").astype(np.float32)
    types = np.concatenate(types)
    obs = synthetic_obs(spec, types)
    var = pd.DataFrame(index=gene_names(spec.n_genes))
    adata = ad.AnnData(X=X, obs=obs, var=var)
    if spec.n_antibodies:
        counts, group = simulate_protein(spec, types)
        adata.obsm["protein_counts"] = pd.DataFrame(
            counts.astype(np.float32),
            index=adata.obs_names,
            columns=antibody_names(counts.shape[1]),
        )
        names = obs["cell_type"].astype(str).to_numpy().copy()
        # categorical already: anndata would convert it while writing and say so on the console
        adata.obs["rna_type"] = pd.Categorical(obs["cell_type"].astype(str).to_numpy())
        names[group == 1] = [f"{n}_hi" for n in names[group == 1]]
        names[group == 0] = [f"{n}_lo" for n in names[group == 0]]
        adata.obs["cell_type"] = pd.Categorical(names)
    return adata


def write_h5ad(spec: SyntheticSpec, path: str) -> None:
    """Stream the simulation into an h5ad (CSR X appended chunk by chunk), atomically."""
    import h5py
    import pandas as pd
    from anndata.io import sparse_dataset, write_elem

    from scdrbench.common.io import atomic_path

    obs = synthetic_obs(spec, cell_types(spec))
    var = pd.DataFrame(index=gene_names(spec.n_genes))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write_elem(f, "obs", obs)
            write_elem(f, "var", var)
            for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
                write_elem(f, key, {})
            X = None
            for chunk, _ in simulate_chunks(spec):
                chunk = chunk.astype(np.float32)
                if X is None:
                    write_elem(f, "X", chunk)
                    X = sparse_dataset(f["X"])
                else:
                    X.append(chunk)
            f.attrs["encoding-type"] = "anndata"
            f.attrs["encoding-version"] = "0.1.0"


def write_tenx_h5(spec: SyntheticSpec, path: str, *, layout: str = "v3", genome="mm10") -> None:
    """Stream the simulation into a Cell Ranger HDF5 matrix (one column per cell), atomically.

    ``layout='v3'``: group ``matrix`` with ``features/{id,name,feature_type,genome}``;
    ``layout='v2'``: group ``<genome>`` with ``genes`` and ``gene_names``.
    """
    import h5py

    from scdrbench.common.io import atomic_path

    if layout not in ("v2", "v3"):
        raise ValueError(f"layout must be 'v2' or 'v3', got {layout!r}")
    genes = gene_names(spec.n_genes)
    ids = np.array([f"ENSMUSG{i + 1:011d}" for i in range(spec.n_genes)])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group("matrix" if layout == "v3" else genome)
        g.create_dataset("barcodes", data=barcodes(spec.n_cells).astype("S"))
        data = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype="int32", chunks=True)
        indices = g.create_dataset(
            "indices", shape=(0,), maxshape=(None,), dtype="int64", chunks=True
        )
        indptr = [0]
        for chunk, _ in simulate_chunks(spec):
            n0, n1 = data.shape[0], data.shape[0] + chunk.nnz
            data.resize((n1,))
            indices.resize((n1,))
            data[n0:n1] = chunk.data
            indices[n0:n1] = chunk.indices
            indptr.extend((chunk.indptr[1:] + n0).tolist())
        g.create_dataset("indptr", data=np.asarray(indptr, dtype=np.int64))
        g.create_dataset("shape", data=np.array([spec.n_genes, spec.n_cells], dtype=np.int32))
        if layout == "v3":
            feat = g.create_group("features")
            feat.create_dataset("id", data=ids.astype("S"))
            feat.create_dataset("name", data=genes.astype("S"))
            feat.create_dataset("feature_type", data=np.full(spec.n_genes, b"Gene Expression"))
            feat.create_dataset("genome", data=np.full(spec.n_genes, genome.encode()))
        else:
            g.create_dataset("genes", data=ids.astype("S"))
            g.create_dataset("gene_names", data=genes.astype("S"))


def write_labels(spec: SyntheticSpec, path: str) -> None:
    """Write ``barcode,label`` (no header) for every cell."""
    import pandas as pd

    from scdrbench.common.io import atomic_path

    df = pd.DataFrame(
        {"barcode": barcodes(spec.n_cells), "label": type_names(spec)[cell_types(spec)]}
    )
    with atomic_path(path) as tmp:
        df.to_csv(tmp, header=False, index=False)


def main(argv=None) -> None:
    """CLI: ``python -m scdrbench.data.synthetic --n-cells N --format h5ad|tenx_v2|tenx_v3 OUT``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output")
    p.add_argument("--n-cells", type=int, default=10_000)
    p.add_argument("--n-genes", type=int, default=2_000)
    p.add_argument("--n-types", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-lineages", type=int, default=None, help="default: ceil(n_types / 3)")
    p.add_argument("--median-library-size", type=float, default=None)
    p.add_argument("--format", choices=["h5ad", "tenx_v2", "tenx_v3"], default="h5ad")
    p.add_argument("--labels", help="also write barcode,label CSV here")
    a = p.parse_args(argv)
    spec = SyntheticSpec(
        n_cells=a.n_cells,
        n_genes=a.n_genes,
        n_types=a.n_types,
        seed=a.seed,
        median_library_size=a.median_library_size,
        n_lineages=a.n_lineages,
    )
    if a.format == "h5ad":
        write_h5ad(spec, a.output)
    else:
        write_tenx_h5(spec, a.output, layout=a.format[-2:])
    if a.labels:
        write_labels(spec, a.labels)


if __name__ == "__main__":
    main()
