"""Time the two autoencoders (ae_keras, ae_tf) on a million synthetic cells x 19 PCs.

The essay's claim: a deep autoencoder embeds 1.3M cells in "a couple of minutes" on a laptop.
The target here: a fit under 2 minutes on 2 cores with the registry defaults. Each method runs
in its own subprocess (fresh TensorFlow, its own peak RSS), ``--repeats`` times; the script
prints seconds per epoch, total fit seconds, the final reconstruction loss and the peak RSS, and
the median over repeats.

    python benchmarks/bench_autoencoders.py                 # 1M cells, 1 repeat, 2 threads
    python benchmarks/bench_autoencoders.py --n-cells 200000 --repeats 3

Not a test: it takes minutes. Results depend on what else the machine runs; say so when quoting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ae_keras", "ae_tf")


def synthetic_pcs(n_cells: int, n_dims: int = 19, n_clusters: int = 12, seed: int = 0):
    """Clustered Gaussian data with PC-like decaying variance, float32 (seeded)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(n_clusters, n_dims))
    labels = rng.integers(n_clusters, size=n_cells)
    X = rng.standard_normal((n_cells, n_dims), dtype=np.float32)
    X += centers[labels].astype(np.float32)
    X *= np.geomspace(10.0, 1.0, n_dims).astype(np.float32)
    return X, labels


def run_one(method: str, n_cells: int, threads: int, seed: int) -> dict:
    """Fit one method in this process; return the measurements as a dict."""
    from scdrbench.common.runtime import peak_rss_mb, pin_threads

    pin_threads(threads)
    import importlib

    X, _ = synthetic_pcs(n_cells, seed=seed)
    module = importlib.import_module(f"scdrbench.methods.{method}")
    info: dict = {}
    start = time.perf_counter()
    module.embed(X, seed=seed, info=info, threads=threads)
    fit_s = time.perf_counter() - start
    return {
        "method": method,
        "n_cells": n_cells,
        "fit_s": fit_s,
        "epochs": info["epochs_run"],
        "s_per_epoch": fit_s / info["epochs_run"],
        "final_loss": info["final_loss"],
        "batch_size": info["batch_size"],
        "peak_rss_mb": peak_rss_mb(),
        "device": info["device"],
    }


def main(n_cells: int, repeats: int, threads: int, seed: int, methods=METHODS) -> list[dict]:
    """Run every method ``repeats`` times in fresh subprocesses and print a summary table."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    rows = []
    for method in methods:
        for rep in range(repeats):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                method,
                "--n-cells",
                str(n_cells),
                "--threads",
                str(threads),
                "--seed",
                str(seed),
            ]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["repeat"] = rep
            rows.append(row)
            print(
                f"{method:9s} repeat {rep}: {row['s_per_epoch']:.2f} s/epoch x {row['epochs']} "
                f"epochs (batch {row['batch_size']}) = {row['fit_s']:.1f} s fit, final loss "
                f"{row['final_loss']:.5f}, peak RSS {row['peak_rss_mb']:.0f} MB, {row['device']}",
                flush=True,
            )
    print(f"\nmedian over {repeats} repeat(s), {n_cells} cells x 19 dims, {threads} threads:")
    print("method     s/epoch   fit_s  epochs  final_loss  peak_rss_mb")
    for method in methods:
        sel = [r for r in rows if r["method"] == method]

        def med(key, sel=sel):
            return statistics.median(r[key] for r in sel)

        print(
            f"{method:9s} {med('s_per_epoch'):8.2f} {med('fit_s'):7.1f} {med('epochs'):7.0f} "
            f"{med('final_loss'):11.5f} {med('peak_rss_mb'):12.0f}"
        )
    return rows


def cli(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.n_cells, args.threads, args.seed)))
    else:
        main(args.n_cells, args.repeats, args.threads, args.seed, args.methods)


if __name__ == "__main__":
    cli()
