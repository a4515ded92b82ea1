"""Benchmark of t-SNE's memory at high perplexity: the kNN graph with and without ``k_neighbors``.

The essay's FIt-SNE at perplexity 350 on 1.3M cells needed a 256 GB node. openTSNE's memory is
dominated by the kNN graph and the affinity matrix, ``k`` neighbours per cell (3 x perplexity
by default, 1,050 at perplexity 350). This script runs ``scdrbench.methods.tsne.embed`` in a fresh
process per setting (so each peak is its own) on ``--n-cells`` cells of a clustered 50-D data set
(the benchmark's generator, or the first cells of a ``pca.h5ad`` given with ``--pca``), and prints
the seconds and the kernel's peak RSS, the kNN accuracy of the labels, and a linear extrapolation
of the memory to 1.3M cells from the two sizes given (memory above the fixed overhead is linear in
the number of cells at a fixed ``k``).

Run from the repository root::

    nice .venv/bin/python -m benchmarks.bench_tsne --n-cells 25000 50000 \\
        --perplexity 350 --k-neighbors auto 350 --n-iter 100

``--n-iter`` shortens the optimisation (the peak is reached when the affinities are built; the
gradient steps add O(n) memory); the reported fit seconds are then not a full run's.
Target (the scale issue): perplexity 350 on 1.3M cells fits in 24 GiB; see also ``affinities: lean``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FULL_N = 1_306_127

CHILD = r"""
import json, sys, time
import numpy as np
from scdrbench.common.runtime import peak_rss_mb, pin_threads
pin_threads({threads})
import openTSNE  # imported before the clock starts, as in the workflow
from scdrbench.methods import tsne
from benchmarks.bench_tsne import load
X, y = load({n_cells}, {pca!r})
base = peak_rss_mb()
k = {k!r}
info = {{}}
t0 = time.perf_counter()
emb = tsne.embed(X, seed=0, info=info, threads={threads}, perplexity={perplexity},
                 n_iter={n_iter}, early_exaggeration_iter={ee_iter},
                 k_neighbors=k if k == "auto" else int(k))
seconds = time.perf_counter() - t0
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
acc = float(cross_val_score(KNeighborsClassifier(10), emb, y, cv=5).mean())
print(json.dumps(dict(seconds=seconds, peak_mb=peak_rss_mb(), data_mb=base, knn_acc=acc,
                      k=info["k_neighbors"])))
"""


def load(n_cells: int, pca: str | None):
    """``(X float32 (n, 50), labels)``: the first cells of ``pca`` or a clustered Gaussian set."""
    if pca:
        import anndata as ad

        a = ad.read_h5ad(pca, backed="r")
        X = np.asarray(a.obsm["X_pca"][:n_cells], dtype=np.float32)
        y = a.obs["label"].to_numpy()[:n_cells].astype(str)
        return X, y
    rng = np.random.default_rng(0)
    n_classes, n_dims = 30, 50
    centres = rng.normal(scale=3.0, size=(n_classes, n_dims)).astype(np.float32)
    y = rng.choice(n_classes, size=n_cells, p=rng.dirichlet(np.full(n_classes, 2.0)))
    X = centres[y] + rng.standard_normal((n_cells, n_dims), dtype=np.float32)
    return X, y.astype(str)


def run_one(n_cells, k, args) -> dict:
    code = CHILD.format(
        root=str(ROOT),
        threads=args.threads,
        n_cells=n_cells,
        pca=args.pca,
        k=k,
        perplexity=args.perplexity,
        n_iter=args.n_iter,
        ee_iter=args.early_exaggeration_iter,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"n={n_cells} k={k} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, nargs="+", default=[25_000, 50_000])
    p.add_argument("--perplexity", type=float, default=350)
    p.add_argument("--k-neighbors", nargs="+", default=["auto", "350"])
    p.add_argument("--n-iter", type=int, default=100)
    p.add_argument("--early-exaggeration-iter", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pca", help="a pca.h5ad (obsm X_pca, obs label) instead of generated data")
    args = p.parse_args(argv)
    from scdrbench.methods import tsne

    print(
        f"perplexity {args.perplexity:g}, {args.threads} threads, n_iter {args.n_iter} "
        f"(+{args.early_exaggeration_iter} early exaggeration)"
    )
    print(f"{'cells':>9} {'k':>5} {'fit s':>8} {'peak MB':>9} {'kNN acc':>8} {'estimate MB':>12}")
    results: dict = {}
    for k in args.k_neighbors:
        for n in args.n_cells:
            r = run_one(n, k, args)
            est = tsne.estimate_memory_mb(n, 50, perplexity=args.perplexity, k_neighbors=k)
            results.setdefault(k, []).append((n, r))
            print(
                f"{n:>9,} {r['k']:>5} {r['seconds']:>8.1f} {r['peak_mb']:>9.0f} "
                f"{r['knn_acc']:>8.3f} {est:>12.0f}",
                flush=True,
            )
    if len(args.n_cells) >= 2:
        print(f"\nlinear extrapolation of the peak to {FULL_N:,} cells:")
        for k, rows in results.items():
            (n0, r0), (n1, r1) = rows[0], rows[-1]
            slope = (r1["peak_mb"] - r0["peak_mb"]) / (n1 - n0)
            full = r1["peak_mb"] + slope * (FULL_N - n1)
            est = tsne.estimate_memory_mb(FULL_N, 50, perplexity=args.perplexity, k_neighbors=k)
            print(
                f"  k={k}: {slope * 1e3:.2f} MB per 1,000 cells -> about {full / 1024:.1f} GiB "
                f"(scdrbench's estimate {est / 1024:.1f} GiB)"
            )


if __name__ == "__main__":
    main()
