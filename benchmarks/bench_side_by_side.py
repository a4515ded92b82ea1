"""Project job vs bare library, side by side: t-SNE (openTSNE) and UMAP (umap-learn).

Usage (from the repository root, nothing else running; ``make side-by-side`` runs the 1.3M one)::

    python benchmarks/bench_side_by_side.py --rung 100000 --repeats 3
    python benchmarks/bench_side_by_side.py --rung 1306127 --methods tsne
    python benchmarks/bench_side_by_side.py results/data/proxy_1m_n100000/pca.h5ad  # a given input

``--rung N`` takes the ladder's rung of N cells (``benchmarks/ladder.yaml``) and, when its
``results/data/{rung}/pca.h5ad`` is missing, makes it first as the ladder does: the proxy (when
missing), then Snakemake's prepare and preprocess jobs of that rung.

For each method, on the same 50 PCs, with the same parameters (the method's entry in
``benchmarks/ladder.yaml``, defaults filled) and the same threads, two fresh processes run one
after the other, each with every thread pool pinned as the workflow's rules pin them:

- **project**: the embedding job's own work, ``python -m scdrbench.stages.embed --child`` (the code a
  Snakemake job runs under its supervisor), its fit time read from the file it writes;
- **bare**: the library called directly as its documentation shows (``openTSNE.TSNE(...).fit``,
  ``umap.UMAP(...).fit_transform``), timed around the fit alone.

It prints fit seconds, CPU seconds of the fit (all threads) and the ratio project / bare, and
appends them to ``benchmarks/results/side_by_side.tsv`` with the date, machine, versions and what
else ran on the machine (``--shared-with``), a row as soon as a pair is measured.

``--repeats N`` measures each pair N times, the order alternating (bare first, then project
first), since a VM's speed drifts over an hour; each pair is a row (its ``order`` column says
which ran first) and the medians of the N fit times and ratios are printed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "benchmarks" / "results" / "side_by_side.tsv"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bare(method: str, pca_path: str, params: dict, threads: int, seed: int) -> None:
    """The library alone (runs in its own process); prints JSON with the fit's numbers."""
    import anndata as ad
    import numpy as np

    X = np.asarray(ad.read_h5ad(pca_path, backed="r").obsm["X_pca"], dtype=np.float32)
    n = X.shape[0]
    if method == "tsne":
        from openTSNE import TSNE

        lr = params["learning_rate"]
        model = TSNE(
            n_components=2,
            perplexity=params["perplexity"],
            learning_rate=max(n / 12.0, 200.0) if lr == "auto" else float(lr),
            early_exaggeration_iter=params["early_exaggeration_iter"],
            n_iter=params["n_iter"],
            exaggeration=params.get("exaggeration"),
            initialization=params["initialization"],
            negative_gradient_method=params["negative_gradient_method"],
            n_jobs=threads,
            random_state=seed,
        )
        fit = model.fit
    elif method == "umap":
        import umap

        model = umap.UMAP(
            n_components=2,
            n_neighbors=params["n_neighbors"],
            min_dist=params["min_dist"],
            n_epochs=params.get("n_epochs"),
            init=params["init"],
            random_state=seed if params["deterministic"] else None,
            n_jobs=1 if params["deterministic"] else threads,
        )
        fit = model.fit_transform
    else:
        raise SystemExit(f"no bare version of {method}")
    cpu0, t0 = _cpu(), time.perf_counter()
    emb = fit(X)
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    assert np.isfinite(np.asarray(emb)).all()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fit_s": seconds, "fit_cpu_s": cpu, "peak_rss_mb": peak}))


def _env(threads: int) -> dict:
    from scdrbench.common.runtime import THREAD_VARIABLES

    env = dict(os.environ, TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.update({var: str(threads) for var in THREAD_VARIABLES})
    return env


def project(method: str, entry: dict, pca_path: str, threads: int, seed: int) -> dict:
    """The workflow's embedding job (its supervised child), on the same input."""
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{method}.h5ad"
        cmd = [sys.executable, "-m", "scdrbench.stages.embed", "--child", "--input", pca_path]
        cmd += ["--output", str(out), "--dataset", Path(pca_path).parent.name]
        cmd += ["--method", method, "--entry", json.dumps(entry), "--seed", str(seed)]
        cmd += ["--threads", str(threads)]
        subprocess.run(cmd, cwd=ROOT, env=_env(threads), check=True)
        with h5py.File(out, "r") as f:
            uns = f["uns"]
            return {
                "fit_s": float(uns["fit_seconds"][()]),
                "fit_cpu_s": float(uns["fit_cpu_seconds"][()]),
                "peak_rss_mb": float(uns["peak_rss_mb"][()]),
            }


def run_bare(method: str, entry: dict, a: argparse.Namespace, n: int) -> dict:
    """The bare library in a fresh process, as :func:`bare`; its numbers printed at once (a
    sitting that ends during the project's fit keeps them in the log)."""
    cmd = [sys.executable, __file__, a.pca, "--bare", method]
    cmd += ["--params", json.dumps(entry["params"]), "--threads", str(a.threads)]
    cmd += ["--seed", str(a.seed)]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=_env(a.threads), check=True, capture_output=True, text=True
    )
    b = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"{method} on {n:,} cells, {a.threads} threads: bare {b['fit_s']:.2f} s "
        f"({b['fit_cpu_s']:.1f} CPU s, peak {b['peak_rss_mb']:.0f} MB)",
        flush=True,
    )
    return b


def rung_input(config: dict, size: int, cores: int) -> str:
    """``results/data/{rung}/pca.h5ad`` of the ladder's rung of ``size`` cells, made through the
    workflow (proxy, prepare, preprocess) when it is missing."""
    from ladder_setup import CONFIG, ensure_proxy, rung_ids, unlock_if_stale

    ids = rung_ids(config)
    if size not in ids:
        sizes = ", ".join(str(s) for s in ids)
        raise SystemExit(f"--rung {size}: not a rung of {CONFIG}; use one of {sizes}")
    target = f"results/data/{ids[size]}/pca.h5ad"
    if not (ROOT / target).exists():
        ensure_proxy()
        unlock_if_stale()
        cmd = ["snakemake", "--configfile", CONFIG, "--cores", str(cores), target]
        print(f"{target} is missing: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    return str(ROOT / target)


def append_row(row: dict, out: Path) -> None:
    """Add ``row`` to the table at ``out``; rows of an older layout keep their values (a column
    they lack stays empty, ``shared_with`` says "not recorded", ``order`` "bare first"), and the
    file is replaced whole, never half-written."""
    import pandas as pd

    old = pd.read_csv(out, sep="\t", dtype=str) if out.exists() else None
    new = pd.DataFrame([row]).astype(str)
    if old is not None:
        old = old.reindex(columns=list(dict.fromkeys([*new.columns, *old.columns])))
        old["shared_with"] = old["shared_with"].fillna("not recorded")
        old["order"] = old["order"].fillna("bare first")  # as every earlier version ran them
        new = pd.concat([old, new], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    new.to_csv(tmp, sep="\t", index=False)
    tmp.replace(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("pca", nargs="?", help="a data set's pca.h5ad (results/data/{id}/pca.h5ad)")
    src.add_argument("--rung", type=int, help="the ladder's rung of this many cells")
    p.add_argument("--methods", nargs="+", default=["tsne", "umap"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="pairs per method (order alternates)")
    p.add_argument("--shared-with", default="nothing else", help="what else ran meanwhile")
    p.add_argument("--out", type=Path, default=OUT, help=f"the table (default {OUT.name})")
    p.add_argument("--bare", help=argparse.SUPPRESS)  # internal: run the bare library
    p.add_argument("--params", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.bare:
        return bare(a.bare, a.pca, json.loads(a.params), a.threads, a.seed)
    if a.repeats < 1:
        raise SystemExit(f"--repeats {a.repeats}: must be 1 or more (pairs per method)")

    import anndata as ad
    from ladder_setup import ladder_config

    from scdrbench.common.provenance import machine, versions

    config = ladder_config()
    if a.rung is not None:
        a.pca = rung_input(config, a.rung, a.threads)
    n = ad.read_h5ad(a.pca, backed="r").n_obs
    for method in a.methods:
        entry = config["methods"][method]
        rows = []
        for rep in range(a.repeats):
            bare_first = rep % 2 == 0
            if bare_first:
                b = run_bare(method, entry, a, n)
            j = project(method, entry, a.pca, a.threads, a.seed)
            if not bare_first:
                b = run_bare(method, entry, a, n)
            row = {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "dataset": Path(a.pca).parent.name,
                "n_cells": n,
                "method": method,
                "params": json.dumps(entry["params"], sort_keys=True),
                "threads": a.threads,
                "project_fit_s": round(j["fit_s"], 2),
                "bare_fit_s": round(b["fit_s"], 2),
                "ratio": round(j["fit_s"] / b["fit_s"], 3),
                "project_threads_used": round(j["fit_cpu_s"] / j["fit_s"], 2),
                "bare_threads_used": round(b["fit_cpu_s"] / b["fit_s"], 2),
                "project_peak_mb": round(j["peak_rss_mb"]),
                "bare_peak_mb": round(b["peak_rss_mb"]),
                "order": "bare first" if bare_first else "project first",
                "machine": machine(),
                "versions": versions(),
                "shared_with": a.shared_with,
            }
            # each pair's row as soon as it is measured: at 1.3M a pair takes an hour or more
            append_row(row, a.out)
            rows.append(row)
            print(
                f"{method} on {n:,} cells, {a.threads} threads, pair {rep + 1} of {a.repeats} "
                f"({row['order']}): project {row['project_fit_s']} s, bare {row['bare_fit_s']} s, "
                f"ratio {row['ratio']}",
                flush=True,
            )
        if a.repeats > 1:
            med = {
                k: statistics.median(r[k] for r in rows)
                for k in ("project_fit_s", "bare_fit_s", "ratio")
            }
            print(
                f"{method} on {n:,} cells, median of {a.repeats} pairs: project "
                f"{med['project_fit_s']:.2f} s, bare {med['bare_fit_s']:.2f} s, "
                f"ratio {med['ratio']:.3f}",
                flush=True,
            )
    return None


if __name__ == "__main__":
    main()
