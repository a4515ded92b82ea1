"""Benchmark of the memory model: each method's measured peak against its ``estimate_memory_mb``.

The memory guard and the SLURM memory request (``rules/common.smk: get_mem_mb``) both rest on
each method's ``estimate_memory_mb(n_cells, n_features, **params)``. This script runs methods
of the registry (``config.yaml``, their paper parameters unless ``--set`` overrides them) in a
fresh process per method and size, on a clustered 50-D data set (or the first ``--dims``
columns), and prints the fit seconds, the kernel's peak RSS (``getrusage``, including the
interpreter and the imported libraries), the estimate and their ratio. A ratio above 1 means the
estimate is too low: the guard would let a job start that the scheduler may kill.

Run from the repository root::

    nice .venv/bin/python -m benchmarks.bench_memory --methods umap tsne --n-cells 20000 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from scdrbench.common.runtime import peak_rss_mb, pin_threads
pin_threads({threads})
from scdrbench.methods import get_method
impl = get_method({algorithm!r})
import importlib
for name in getattr(impl, "BACKEND_MODULES", ()):
    importlib.import_module(name)
from benchmarks.bench_tsne import load
X, y = load({n_cells}, None)
X = X[:, :{dims}].copy()
t0 = time.perf_counter()
emb = impl.embed(X, seed=0, threads={threads}, **{params!r})
print(json.dumps(dict(seconds=time.perf_counter() - t0, peak_mb=peak_rss_mb())))
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["tsne", "umap"])
    p.add_argument("--n-cells", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--dims", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], help="param=value overrides, e.g. n_epochs=50")
    args = p.parse_args(argv)
    from scdrbench.common.config import validate_config
    from scdrbench.methods import get_method

    with open(ROOT / "config.yaml") as fh:
        config = yaml.safe_load(fh)
    validate_config(config)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    print(f"{args.threads} threads, {args.dims} input dimensions")
    print(f"{'method':>16} {'cells':>9} {'fit s':>8} {'peak MB':>9} {'estimate':>9} {'ratio':>6}")
    for method in args.methods:
        entry = config["methods"][method]
        params = {**entry["params"], **overrides}
        impl = get_method(entry["algorithm"])
        for n in args.n_cells:
            code = CHILD.format(
                root=str(ROOT),
                threads=args.threads,
                algorithm=entry["algorithm"],
                n_cells=n,
                dims=args.dims,
                params=params,
            )
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
            )
            if out.returncode != 0:
                print(f"{method:>16} {n:>9,} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            est = impl.estimate_memory_mb(n, args.dims, **params)
            print(
                f"{method:>16} {n:>9,} {r['seconds']:>8.1f} {r['peak_mb']:>9.0f} "
                f"{est:>9.0f} {r['peak_mb'] / est if est else float('nan'):>6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
