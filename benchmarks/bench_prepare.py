"""Benchmark: prepare + streamed preprocessing of a 1.3M-cell synthetic 10x HDF5 file.

Usage (from the repository root; the data file is large, keep it outside the repository)::

    python benchmarks/bench_prepare.py generate /work/bench-data/synthetic_1m.h5
    python benchmarks/bench_prepare.py run /work/bench-data/synthetic_1m.h5 --workdir /work/bench-data/run
    python benchmarks/bench_prepare.py compare /work/bench-data/synthetic_1m.h5 --n-cells 200000

``generate`` writes a Cell Ranger v2 HDF5 (group ``mm10``, one column per cell, lzf-compressed)
with realistic sparsity: ``SyntheticSpec(n_genes=28000, median_library_size=2000)`` gives a
median of about 1,500 genes detected per cell. Simulating 1.3M cells x 28,000 genes densely takes
about 80 minutes on one core, so the simulator draws ``n_cells / copies`` distinct cells and each
is written ``copies`` times, binomially thinned with its own probability in [0.6, 1] per copy
(distinct cells with the same gene programmes; sparsity and library sizes stay realistic).

``run`` times the two workflow steps as separate processes (``scdrbench.stages.prepare`` then
``scdrbench.stages.preprocess``), each with its wall time and peak RSS (the kernel's high-water mark).
``compare`` runs the streamed route and scanpy's in-memory route on the first ``n`` cells and
prints the ratio of wall times and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def thinned_copies(spec, copies: int, seed: int = 0):
    """Yield CSR int32 chunks: the simulated cells ``copies`` times, each copy thinned."""
    from scdrbench.data.synthetic import simulate_chunks

    base = [chunk for chunk, _ in simulate_chunks(spec)]
    for rep in range(copies):
        for i, chunk in enumerate(base):
            rng = np.random.default_rng([seed, 99, rep, i])
            keep = rng.uniform(0.6, 1.0, size=chunk.shape[0])
            p = np.repeat(keep, np.diff(chunk.indptr))
            out = chunk.copy()
            out.data = rng.binomial(chunk.data, p).astype(np.int32)
            out.eliminate_zeros()
            yield out


def write_tenx_v2(chunks, path: str, *, n_cells: int, n_genes: int, genome: str = "mm10"):
    """Stream CSR (cells x genes) chunks into a Cell Ranger v2 HDF5 file, lzf-compressed."""
    import h5py

    from scdrbench.common.io import atomic_path
    from scdrbench.data.synthetic import barcodes, gene_names

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group(genome)
        g.create_dataset("barcodes", data=barcodes(n_cells).astype("S"))
        kw = {"maxshape": (None,), "chunks": (1 << 18,), "compression": "lzf"}
        data = g.create_dataset("data", shape=(0,), dtype="int32", **kw)
        indices = g.create_dataset("indices", shape=(0,), dtype="int64", **kw)
        indptr = [np.zeros(1, dtype=np.int64)]
        n_done = 0
        t0 = time.perf_counter()
        for chunk in chunks:
            n0, n1 = data.shape[0], data.shape[0] + chunk.nnz
            data.resize((n1,))
            indices.resize((n1,))
            data[n0:n1] = chunk.data
            indices[n0:n1] = chunk.indices
            indptr.append(chunk.indptr[1:].astype(np.int64) + n0)
            n_done += chunk.shape[0]
            print(
                f"  {n_done:,} cells, {n1:,} nonzeros, {time.perf_counter() - t0:.0f} s", flush=True
            )
        g.create_dataset("indptr", data=np.concatenate(indptr))
        g.create_dataset("shape", data=np.array([n_genes, n_done], dtype=np.int32))
        ids = np.array([f"ENSMUSG{i + 1:011d}" for i in range(n_genes)])
        g.create_dataset("genes", data=ids.astype("S"))
        g.create_dataset("gene_names", data=gene_names(n_genes).astype("S"))
    if n_done != n_cells:
        raise RuntimeError(f"wrote {n_done} cells, expected {n_cells}")


def generate(path: str, *, n_cells: int, n_genes: int, copies: int, median_library_size: float):
    from scdrbench.data.synthetic import SyntheticSpec

    if n_cells % copies:
        raise SystemExit("--n-cells must be a multiple of --copies")
    spec = SyntheticSpec(
        n_cells=n_cells // copies,
        n_genes=n_genes,
        n_types=20,
        seed=0,
        median_library_size=median_library_size,
        chunk_size=5000,
    )
    t0 = time.perf_counter()
    write_tenx_v2(thinned_copies(spec, copies), path, n_cells=n_cells, n_genes=n_genes)
    print(
        f"generated {path}: {n_cells:,} cells x {n_genes:,} genes in {time.perf_counter() - t0:.0f} s"
    )


def timed(cmd: list[str], env=None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS MB of that child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited-for children: run each step in a fresh
    # `python benchmarks/bench_prepare.py` call, or read the step's own log, when it matters.
    return wall, max(after, before) / 1024.0


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


PARAMS = {
    "target_sum": 10000,
    "n_hvg": 2000,
    "n_pcs": 50,
    "significant_pcs": {"n_permutations": 10, "max_cells": 10000, "quantile": 0.95, "min_pcs": 2},
}


def run(path: str, workdir: str, *, threads: int, labels: str):
    """Prepare then preprocess (streamed) as the workflow would; print wall and peak RSS."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    entry = {"source": "tenx_h5", "path": path, "labels": {"from": "leiden", "resolution": 1.0}}
    counts, pca = work / "counts.h5ad", work / "pca.h5ad"
    py = sys.executable
    rows = []
    cmd = [py, "-m", "scdrbench.stages.prepare", "--dataset", "bench", "--entry", json.dumps(entry)]
    cmd += ["--inputs", json.dumps({"file": path}), "--output", str(counts)]
    cmd += ["--threads", str(threads), "--log", str(work / "prepare.log")]
    rows.append(("prepare", *_measure(cmd, threads)))
    lab = {"from": "leiden", "resolution": 1.0}
    cmd = [py, "-m", "scdrbench.stages.preprocess", "--counts", str(counts), "--output", str(pca)]
    cmd += ["--params", json.dumps(PARAMS), "--labels", json.dumps(lab), "--seed", "0"]
    cmd += ["--threads", str(threads), "--log", str(work / "preprocess.log")]
    if labels == "none":
        cmd += ["--no-labels"]  # prepare + PCA only: Leiden of 1.3M cells is timed apart
    rows.append(("preprocess", *_measure(cmd, threads)))
    for step, wall, rss in rows:
        print(f"{step:<12} wall {wall:8.1f} s   peak RSS {rss:8.0f} MB")
    print(
        f"{'total':<12} wall {sum(r[1] for r in rows):8.1f} s   peak RSS {max(r[2] for r in rows):8.0f} MB"
    )


def _measure(cmd: list[str], threads: int) -> tuple[float, float]:
    """Wall time and peak RSS of one command, measured by a fresh wrapper process."""
    wrapper = (
        "import resource,subprocess,sys,time,json;t=time.perf_counter();"
        "subprocess.run(sys.argv[1:],check=True);"
        "print(json.dumps([time.perf_counter()-t,"
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd],
        check=True,
        env=_env(threads),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    wall, rss = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, rss


def compare(path: str, workdir: str, *, n_cells: int, threads: int):
    """Streamed vs scanpy in-memory route on the first ``n_cells`` cells of ``path``."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    sub = work / f"first_{n_cells}.h5ad"
    if not sub.exists():
        from scdrbench.data.stream import write_counts_h5ad

        write_counts_h5ad(path, str(sub), max_cells=n_cells)
    py = sys.executable
    results = {}
    for route in ("stream", "memory"):
        cmd = [py, "-m", "scdrbench.stages.preprocess", "--counts", str(sub)]
        cmd += ["--output", str(work / f"pca_{route}.h5ad"), "--params", json.dumps(PARAMS)]
        cmd += ["--labels", json.dumps({"from": "file"}), "--seed", "0"]
        cmd += ["--threads", str(threads), "--route", route, "--no-labels"]
        cmd += ["--log", str(work / f"preprocess_{route}.log")]
        results[route] = _measure(cmd, threads)
        print(f"{route:<8} wall {results[route][0]:8.1f} s   peak RSS {results[route][1]:8.0f} MB")
    (ws, rs), (wm, rm) = results["stream"], results["memory"]
    print(f"streamed / in-memory: wall {ws / wm:.2f}x, peak RSS {rs / rm:.2f}x ({n_cells:,} cells)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("output")
    g.add_argument("--n-cells", type=int, default=1_306_130)
    g.add_argument("--n-genes", type=int, default=28_000)
    g.add_argument("--copies", type=int, default=10)
    g.add_argument("--median-library-size", type=float, default=2000)
    r = sub.add_parser("run")
    r.add_argument("input")
    r.add_argument("--workdir", required=True)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--labels", default="leiden", choices=["leiden", "none"])
    c = sub.add_parser("compare")
    c.add_argument("input")
    c.add_argument("--workdir", required=True)
    c.add_argument("--n-cells", type=int, default=200_000)
    c.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if a.cmd == "generate":
        generate(
            a.output,
            n_cells=a.n_cells,
            n_genes=a.n_genes,
            copies=a.copies,
            median_library_size=a.median_library_size,
        )
    elif a.cmd == "run":
        run(a.input, a.workdir, threads=a.threads, labels=a.labels)
    else:
        compare(a.input, a.workdir, n_cells=a.n_cells, threads=a.threads)


if __name__ == "__main__":
    main()
