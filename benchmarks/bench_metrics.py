"""Benchmark of the scoring stage at scale: wall seconds per metric and peak memory.

Generates ``--n-cells`` synthetic cells (default 1.3M, the size of the 10x mouse brain data set):
a 50-D float32 reference with cluster structure, a 2-D embedding that is a noisy linear
projection of it, and cluster labels. Then runs :func:`scdrbench.metrics.score_embedding` and
prints the seconds of each metric, the total and the process's peak resident memory
(``resource.getrusage``, which includes the generated data).

Run from the repository root::

    nice .venv/bin/python -m benchmarks.bench_metrics --n-cells 1300000 --threads 2

With ``--end-to-end`` it also writes the data as an embedding file and a ``pca.h5ad`` to a
temporary folder and times ``python -m scdrbench.metrics`` on them in a fresh process (reading,
checks, scoring, writing), reporting that process's peak memory.

Target (issue 5): under 4 GB peak and a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from scdrbench.common.runtime import pin_threads  # noqa: E402
from scdrbench.metrics import score_embedding  # noqa: E402


def synthetic(n_cells: int, *, n_dims: int = 50, n_classes: int = 30, seed: int = 0):
    """Clustered 50-D reference (float32), a noisy 2-D projection of it, and labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_classes, n_dims)).astype(np.float32)
    weights = rng.dirichlet(np.full(n_classes, 2.0))
    labels = rng.choice(n_classes, size=n_cells, p=weights)
    ref = np.empty((n_cells, n_dims), dtype=np.float32)
    for start in range(0, n_cells, 100_000):  # chunks keep the float64 noise temporary small
        stop = min(start + 100_000, n_cells)
        ref[start:stop] = centres[labels[start:stop]] + rng.standard_normal(
            (stop - start, n_dims), dtype=np.float32
        )
    projection = rng.normal(size=(n_dims, 2)).astype(np.float32)
    emb = ref @ projection
    emb += rng.normal(scale=emb.std() * 0.2, size=emb.shape).astype(np.float32)
    return ref, emb.astype(np.float64), labels.astype(str)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=1_300_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="also time the CLI on h5ad files in a fresh process",
    )
    args = parser.parse_args(argv)
    pin_threads(args.threads)

    started = time.perf_counter()
    ref, emb, labels = synthetic(args.n_cells, seed=args.seed)
    print(
        f"generated {args.n_cells} cells (50-D reference, 2-D embedding, "
        f"{len(np.unique(labels))} labels) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    started = time.perf_counter()
    table = score_embedding(emb, ref, labels, seed=args.seed, n_jobs=args.threads)
    total = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    print(f"\n{'metric':<16} {'value':>8} {'seconds':>8}  n_cells_scored")
    for row in table.itertuples():
        print(f"{row.metric:<16} {row.value:8.4f} {row.seconds:8.1f}  {row.n_cells_scored}")
    print(f"\ntotal scoring: {total:.1f} s on {args.threads} threads")
    print(f"peak RSS: {peak_mb:.0f} MB (whole process, generated data included)")
    if args.end_to_end:
        end_to_end(ref, emb, labels, seed=args.seed, threads=args.threads)


def end_to_end(ref, emb, labels, *, seed: int, threads: int) -> None:
    """Write the data as the stage's two input files and time the CLI on them."""
    import anndata as ad
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="bench_metrics.") as tmp:
        names = pd.Index([f"cell{i}" for i in range(len(ref))])
        obs = pd.DataFrame({"label": pd.Categorical(labels)}, index=names)
        ad.AnnData(obs=obs, obsm={"X_pca": ref}).write_h5ad(f"{tmp}/pca.h5ad")
        uns = {"dataset_id": "bench", "method_id": "projection", "seed": seed}
        ad.AnnData(obs=obs, obsm={"X_emb": emb}, uns=uns).write_h5ad(f"{tmp}/emb.h5ad")
        del obs, names
        command = [
            sys.executable, "-m", "scdrbench.metrics",
            "--embedding", f"{tmp}/emb.h5ad", "--dataset-file", f"{tmp}/pca.h5ad",
            "--output", f"{tmp}/out.tsv", "--dataset", "bench", "--method", "projection",
            "--seed", str(seed), "--threads", str(threads), "--log", f"{tmp}/score.log",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        print(f"\nend to end (python -m scdrbench.metrics on h5ad files): {wall:.1f} s wall")
        print(f"peak RSS of that process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
