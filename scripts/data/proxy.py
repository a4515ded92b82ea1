"""The 1.3M-cell proxy of the 10x Genomics mouse brain data: sparse counts drawn directly.

The real ``1M_neurons_filtered_gene_bc_matrices_h5.h5`` (1,306,127 cells x 27,998 genes, Cell
Ranger v2 layout, group ``mm10``) cannot be downloaded on machines without network access; the
scaling ladder runs on this proxy instead: the same shape and layout, distinct cells, and a
brain-like population structure.

Model (a mixture of multinomials, so that only each cell's UMIs are drawn, never a dense
cells x genes matrix: 1.3M cells in minutes instead of the 80 minutes of a dense
negative-binomial simulation):

- ``n_types`` cell types in ``n_lineages`` lineages (classes such as neurons, glia, vascular
  cells); type sizes fall geometrically from the largest (about 16% of cells) to the rarest
  (``rarest_fraction`` of the largest: 0.016% of cells, about 200 of 1.3M and 2 of a 10k
  subsample), as in a brain atlas;
- every UMI of a cell comes from one of four gene distributions: the shared base profile
  (log-normal gene proportions), its lineage's programme, and two programmes of its type (A and
  B); a type's programme genes are drawn from its lineage's gene pool, so sister types share
  genes and lie closer together than types of other lineages (global structure);
- per cell, the programme weights vary (Gamma noise) and the mix of the type's A and B
  programmes follows a Beta(2, 2) position: continuous variation within every type;
- library sizes are log-normal around ``median_library_size`` UMIs (sd 0.5 on the log scale).

Cells are drawn ``chunk_size`` at a time, each chunk from its own seeded stream, in parallel
worker processes, and streamed into the HDF5 file in order: same spec, same file, whatever the
number of workers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ProxySpec:
    """Parameters of the proxy (all seeded by ``seed``)."""

    n_cells: int = 1_306_127
    n_genes: int = 27_998
    n_types: int = 40
    n_lineages: int = 7
    rarest_fraction: float = 1e-3
    median_library_size: float = 2_500.0
    lineage_weight: float = 0.06
    type_weight: float = 0.08
    lineage_pool: int = 1_500
    program_genes: int = 150
    seed: int = 0
    chunk_size: int = 10_000


def type_proportions(spec: ProxySpec) -> np.ndarray:
    """Cell-type proportions: geometric from the largest type down to ``rarest_fraction`` of it."""
    props = np.geomspace(1.0, spec.rarest_fraction, spec.n_types)
    return props / props.sum()


def type_lineage(spec: ProxySpec) -> np.ndarray:
    """Lineage of every type: shuffled, so large and rare types share lineages."""
    rng = np.random.default_rng([spec.seed, 11])
    lineage = np.arange(spec.n_types) % spec.n_lineages
    return rng.permutation(lineage)


def components(spec: ProxySpec) -> np.ndarray:
    """The gene distributions, ``(1 + n_lineages + 2 * n_types, n_genes)`` float64, rows sum to 1.

    Row 0 is the base profile, rows ``1 .. n_lineages`` the lineage programmes, then type ``t``'s
    programme A at ``1 + n_lineages + 2 t`` and B right after it.
    """
    rng = np.random.default_rng([spec.seed, 12])
    G = spec.n_genes
    comps = np.zeros((1 + spec.n_lineages + 2 * spec.n_types, G))
    comps[0] = rng.lognormal(0.0, 2.0, size=G)
    pools = [rng.choice(G, size=spec.lineage_pool, replace=False) for _ in range(spec.n_lineages)]
    for g, pool in enumerate(pools):
        genes = rng.choice(pool, size=spec.program_genes * 2, replace=False)
        comps[1 + g, genes] = rng.lognormal(0.0, 1.0, size=genes.size)
    lineage = type_lineage(spec)
    for t in range(spec.n_types):
        for ab in range(2):
            genes = rng.choice(pools[lineage[t]], size=spec.program_genes, replace=False)
            comps[1 + spec.n_lineages + 2 * t + ab, genes] = rng.lognormal(0.0, 1.0, genes.size)
    return comps / comps.sum(axis=1, keepdims=True)


def cell_types(spec: ProxySpec) -> np.ndarray:
    """Type index of every cell (seeded; cells in random order of type)."""
    rng = np.random.default_rng([spec.seed, 13])
    return rng.choice(spec.n_types, size=spec.n_cells, p=type_proportions(spec))


def library_sizes(spec: ProxySpec) -> np.ndarray:
    """UMIs per cell (at least 50)."""
    rng = np.random.default_rng([spec.seed, 14])
    libs = rng.lognormal(np.log(spec.median_library_size), 0.5, size=spec.n_cells)
    return np.maximum(np.rint(libs), 50).astype(np.int64)


def _cdf_table(spec: ProxySpec) -> np.ndarray:
    """Concatenated cumulative distributions, component ``k`` occupying ``[k, k + 1)``."""
    comps = components(spec)
    cdf = np.cumsum(comps, axis=1)
    cdf /= cdf[:, -1:]
    return (cdf + np.arange(len(comps))[:, None]).ravel()


_STATE: dict = {}


def _init_worker(spec_dict: dict) -> None:
    spec = ProxySpec(**spec_dict)
    _STATE.update(
        spec=spec,
        cdf=_cdf_table(spec),
        types=cell_types(spec),
        libs=library_sizes(spec),
        lineage=type_lineage(spec),
    )


def draw_chunk(i: int):
    """Cells ``[i * chunk_size, ...)``: ``(data int32, indices int64, indptr int64)`` (CSR)."""
    spec, cdf, types, libs, lineage = (
        _STATE[k] for k in ("spec", "cdf", "types", "libs", "lineage")
    )
    start = i * spec.chunk_size
    stop = min(start + spec.chunk_size, spec.n_cells)
    n = stop - start
    rng = np.random.default_rng([spec.seed, 15, i])
    t = types[start:stop]
    # per-cell weights of the four distributions: base, lineage, type A, type B
    w_lin = spec.lineage_weight * rng.gamma(4.0, 0.25, n)
    w_type = spec.type_weight * rng.gamma(4.0, 0.25, n)
    pos = rng.beta(2.0, 2.0, n)
    weights = np.stack([1.0 - w_lin - w_type, w_lin, w_type * (1 - pos), w_type * pos], axis=1)
    cum = np.cumsum(np.clip(weights, 0, None), axis=1)
    cum /= cum[:, -1:]
    comp_of = np.stack(
        [
            np.zeros(n, dtype=np.int64),
            1 + lineage[t],
            1 + spec.n_lineages + 2 * t,
            2 + spec.n_lineages + 2 * t,
        ],
        axis=1,
    )
    lib = libs[start:stop]
    cell = np.repeat(np.arange(n, dtype=np.int64), lib)
    u = rng.random(cell.size)
    which = np.zeros(cell.size, dtype=np.int64)
    for j in range(3):
        which += u >= cum[cell, j]
    comp = comp_of[cell, which]
    gene = np.searchsorted(cdf, comp + rng.random(cell.size), side="right") - comp * spec.n_genes
    np.clip(gene, 0, spec.n_genes - 1, out=gene)
    keys = np.sort(cell * spec.n_genes + gene)
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[first, keys.size]).astype(np.int32)
    uniq = keys[first]
    indptr = np.searchsorted(uniq // spec.n_genes, np.arange(n + 1), side="left").astype(np.int64)
    return counts, (uniq % spec.n_genes).astype(np.int64), indptr


def type_names(spec: ProxySpec) -> np.ndarray:
    """``L{lineage}_type{t:02d}``: the lineage is readable in the label."""
    lineage = type_lineage(spec)
    return np.array([f"L{lineage[t]}_type{t:02d}" for t in range(spec.n_types)])


def write_proxy(spec: ProxySpec, path: str, *, labels: str | None = None, workers: int = 2):
    """Write the proxy as a Cell Ranger v2 HDF5 (shuffle + lzf), atomically; returns a summary."""
    import multiprocessing as mp

    import h5py
    import pandas as pd

    from scripts.common.io import atomic_path
    from scripts.data.synthetic import barcodes, gene_names

    t0 = time.perf_counter()
    n_chunks = -(-spec.n_cells // spec.chunk_size)
    nnz_total = 0
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group("mm10")
        g.create_dataset("barcodes", data=barcodes(spec.n_cells).astype("S"))
        kw = {"maxshape": (None,), "chunks": (1 << 20,), "compression": "lzf", "shuffle": True}
        data = g.create_dataset("data", shape=(0,), dtype="int32", **kw)
        indices = g.create_dataset("indices", shape=(0,), dtype="int64", **kw)
        indptr = [np.zeros(1, dtype=np.int64)]
        ctx = mp.get_context("fork")
        with ctx.Pool(max(1, workers), _init_worker, (asdict(spec),)) as pool:
            for k, (d, idx, ptr) in enumerate(pool.imap(draw_chunk, range(n_chunks))):
                n0, n1 = nnz_total, nnz_total + d.size
                data.resize((n1,))
                indices.resize((n1,))
                data[n0:n1] = d
                indices[n0:n1] = idx
                indptr.append(ptr[1:] + n0)
                nnz_total = n1
                if k % 20 == 0 or k == n_chunks - 1:
                    print(
                        f"  chunk {k + 1}/{n_chunks}: {nnz_total:,} nonzeros, "
                        f"{time.perf_counter() - t0:.0f} s",
                        flush=True,
                    )
        g.create_dataset("indptr", data=np.concatenate(indptr))
        g.create_dataset("shape", data=np.array([spec.n_genes, spec.n_cells], dtype=np.int32))
        ids = np.array([f"ENSMUSG{i + 1:011d}" for i in range(spec.n_genes)])
        g.create_dataset("genes", data=ids.astype("S"))
        g.create_dataset("gene_names", data=gene_names(spec.n_genes).astype("S"))
    seconds = time.perf_counter() - t0
    if labels:
        types = cell_types(spec)
        df = pd.DataFrame({"barcode": barcodes(spec.n_cells), "label": type_names(spec)[types]})
        with atomic_path(labels) as tmp:
            df.to_csv(tmp, header=False, index=False)
    return {"path": str(path), "seconds": round(seconds, 1), "nnz": int(nnz_total)}


def sha256sum(path: str, block: int = 1 << 24) -> str:
    """The file's sha256 in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None) -> None:
    """CLI: ``python -m scripts.data.proxy OUT.h5 --labels OUT.csv [--n-cells N] [--record J]``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output", help="the 10x v2 HDF5 file to write")
    p.add_argument("--labels", help="also write barcode,label CSV (the simulated types) here")
    p.add_argument("--n-cells", type=int, default=ProxySpec.n_cells)
    p.add_argument("--n-genes", type=int, default=ProxySpec.n_genes)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--record", help="write the spec, time, size and sha256 as JSON here")
    a = p.parse_args(argv)
    spec = ProxySpec(n_cells=a.n_cells, n_genes=a.n_genes, seed=a.seed)
    out = write_proxy(spec, a.output, labels=a.labels, workers=a.workers)
    t0 = time.perf_counter()
    out["size"] = os.path.getsize(a.output)
    out["sha256"] = sha256sum(a.output)
    out["sha256_seconds"] = round(time.perf_counter() - t0, 1)
    out["labels_sha256"] = sha256sum(a.labels) if a.labels else None
    out["spec"] = asdict(spec)
    if a.record:
        out["generations"] = generations(a.record, out)
    print(json.dumps(out, indent=1))
    if a.record:
        from scripts.common.io import write_text

        write_text(json.dumps(out, indent=1) + "\n", a.record)


def generations(record_path: str, out: dict) -> list[dict]:
    """The record's history: every generation of the same file (same sha256), when and where it
    ran and how long it took, this one last; a file that differs starts a new history."""
    import datetime as dt
    import platform

    import psutil

    try:
        old = json.loads(Path(record_path).read_text())
    except (OSError, ValueError):
        old = {}  # no record yet, or not one this script wrote
    same = isinstance(old, dict) and old.get("sha256") == out["sha256"]
    history = list(old.get("generations", [])) if same else []
    ram = psutil.virtual_memory().total / 2**30
    history.append(
        {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": out["seconds"],
            "sha256_seconds": out["sha256_seconds"],
            "machine": f"{os.cpu_count()} cores, {ram:.0f} GiB RAM, {platform.system()}",
        }
    )
    return history


if __name__ == "__main__":
    main()
