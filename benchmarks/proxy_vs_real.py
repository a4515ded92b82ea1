"""The 1.3M proxy against the real cells it stands for: the same statistics, the same pipeline.

Longer than 400 lines for now: one benchmark read top to bottom (load, pipeline, statistics,
table, figure, cache); its table and figure are to move into a report module as the ladder's did.

Usage (from the repository root; ``make proxy-vs-real``)::

    python benchmarks/proxy_vs_real.py                 # writes benchmarks/results/proxy_vs_real.*
    python benchmarks/proxy_vs_real.py --real PATH     # the real subset elsewhere
    python benchmarks/proxy_vs_real.py --only v3       # one data set into --keep, no table
    python benchmarks/proxy_vs_real.py --candidate '{"bridge_rate": 0.3}'
                                       # a calibration step: version 3 with these fields changed,
                                       # its rows beside the kept real ones, nothing written

Four data sets of 10,000 cells x the first 1,000 genes each:

- **real**: the first 10,000 cells (barcode order) and first 1,000 genes (mm10 order) of the 10x
  Genomics 1.3M mouse brain cells, raw UMIs (``../shared/data/mouse_brain_1m/...``; the test file
  of scanpy's source distribution);
- **proxy v1**: the first 10,000 cells of the earlier proxy (``src/scdrbench/data/proxy.py``, version
  1: the file the ladder's earlier rows ran on), its first 1,000 genes;
- **proxy v2** and **proxy v3**: the same cut of the calibrated proxies (versions 2 and 3).

Each goes through the project's own code, as a workflow job would: ``scdrbench.stages.preprocess``
(library-size normalisation, log1p, HVGs, PCA, significant PCs by the resampling test, Leiden
labels at resolution 1.0: config.yaml's settings, as the paper run labels mouse_brain_1m), the
method modules of ``src/scdrbench/methods`` with their config.yaml entries (PCA, t-SNE, UMAP, both
autoencoders; 2 threads, seed 0) and the metric functions of ``src/scdrbench/metrics`` (kNN accuracy,
KNC and CPD on the Leiden labels). It writes ``benchmarks/results/proxy_vs_real.md`` (the
table, with the tolerance of each calibrated statistic and whether each calibrated version is
within it) and ``proxy_vs_real.png`` (distributions, PCA spectrum, cluster sizes, scores). A few minutes
per data set on 2 idle cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from scdrbench.common.errors import ScdrbenchError, cli_errors  # noqa: E402

#: The real subset: beside the project, never committed (../shared/data/README.md).
REAL = ROOT.parent / "shared" / "data" / "mouse_brain_1m" / "first_10k_cells_first_1000_genes.h5ad"
REAL_SOURCE = (
    "the first 10,000 cells x first 1,000 genes of the 10x Genomics 1.3M mouse brain cells, "
    "shipped as test data in scanpy 1.11.5's source distribution (scanpy/tests/_data/...); "
    "place a copy there or pass --real PATH"
)
OUT = ROOT / "benchmarks" / "results" / "proxy_vs_real"
N_CELLS, N_GENES = 10_000, 1_000
METHODS = ("pca", "tsne", "umap", "ae_keras", "ae_tf")
SCORES = ("knn_accuracy", "knc", "cpd")
#: the keys of a method's config entry that change what it computes (labels, references and
#: selection flags do not, so kept numbers survive them)
COMPUTE_KEYS = ("algorithm", "input", "params")
LABELS = {"from": "leiden", "resolution": 1.0}
THREADS = 2
SEED = 0
#: The calibration's tolerances (issue 25): statistic -> (kind, bound).
TOLERANCE = {
    "median UMIs per cell": ("relative", 0.20),
    "zero fraction": ("absolute", 0.02),
    "significant PCs": ("absolute", 2),
    **{f"kNN accuracy {m}": ("absolute", 0.05) for m in METHODS},
}


#: Why a statistic the calibration could not bring within its tolerance is off (printed in the
#: closing note only while it is off).
WHY_OFF = {
    "kNN accuracy pca": (
        "PCs 1-2 separate version 4's Leiden clusters 0.053 less well than the real cells' "
        "(0.003 beyond the tolerance): with the 40 types in three lineages instead of seven, "
        "the first two PCs hold less of the cluster structure. The weights that keep it "
        "(lineages 0.07, types 0.05: PCA 0.668 in the generator's screen) leave 5 significant "
        "PCs and t-SNE at 0.903, both outside their tolerances, so the calibration takes this "
        "miss instead (version 2's misses, t-SNE and UMAP 0.10 too high, are in the "
        "generator's docstring)"
    ),
}


def load_real(path: Path):
    """The real subset as AnnData (raw integer UMIs, CSR); one line when it is missing."""
    import anndata as ad
    import scipy.sparse as sp

    if not path.exists():
        raise ScdrbenchError(f"proxy_vs_real: the real subset {path} is missing: {REAL_SOURCE}")
    adata = ad.read_h5ad(path)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    return adata[:N_CELLS, :N_GENES].copy()


def load_proxy(spec):
    """The first 10,000 cells x first 1,000 genes of the 1.3M proxy ``spec`` describes."""
    import anndata as ad
    import pandas as pd

    from scdrbench.data.proxy import first_cells
    from scdrbench.data.synthetic import barcodes, gene_names

    X = first_cells(spec, N_CELLS)[:, :N_GENES].astype(np.float32)
    return ad.AnnData(
        X=X,
        obs=pd.DataFrame(index=barcodes(N_CELLS)),
        var=pd.DataFrame(index=gene_names(spec.n_genes)[:N_GENES]),
    )


def count_stats(adata) -> dict:
    """Library sizes, detected genes, per-gene mean / variance-to-mean / zero fraction."""
    X = adata.X.tocsr()
    lib = np.asarray(X.sum(axis=1)).ravel()
    detected = np.diff(X.indptr)
    mean = np.asarray(X.mean(axis=0)).ravel()
    var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
    seen = mean > 0
    vmr = var[seen] / mean[seen]
    gene_zero = 1 - np.bincount(X.indices, minlength=X.shape[1]) / X.shape[0]
    return {
        "lib": lib,
        "detected": detected,
        "gene_mean": mean,
        "vmr": vmr,
        "gene_zero": gene_zero,
        "zero_fraction": 1 - X.nnz / (X.shape[0] * X.shape[1]),
    }


def run_pipeline(counts, config: dict) -> dict:
    """Preprocess, embed with every method of :data:`METHODS` and score on the Leiden labels."""
    from scdrbench.stages.preprocess import preprocess

    pca = preprocess(counts, params=config["preprocess"], labels=LABELS, seed=SEED)
    out = {
        "ratio": np.asarray(pca.uns["pca_variance_ratio"]),
        "n_sig": int(pca.uns["n_significant_pcs"]),
        "sizes": pca.obs["label"].value_counts().to_numpy(),
        "scores": {},
        "fit_s": {},
    }
    for m in METHODS:
        scores, fit_s = embed_and_score(pca, config["methods"][m], SCORES, SEED, THREADS)
        out["scores"][m], out["fit_s"][m] = scores, fit_s
        print(f"    {m}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
    return out


def embed_and_score(pca, entry: dict, scores, seed: int, threads: int):
    """One method through the embedding job's own code (input selection, memory check, fit)
    and the scoring job's metric functions; returns ``({score: value}, fit seconds)``."""
    from scdrbench.metrics.registry import REGISTRY, score_embedding
    from scdrbench.stages.embed import run_method, select_input

    X = select_input(pca, entry["input"])
    emb, _, fit_s = run_method(
        X, algorithm=entry["algorithm"], params=entry["params"], seed=seed, threads=threads
    )
    only = [m for m in REGISTRY if m.name in scores]
    ref = np.asarray(pca.obsm["X_pca"])
    labels = pca.obs["label"].to_numpy()
    table = score_embedding(emb, ref, labels, seed=seed, n_jobs=threads, only=only)
    return dict(zip(table["metric"], table["value"].astype(float), strict=True)), fit_s


def summarise(stats: dict, res: dict) -> dict:
    """The table's rows for one data set: statistic -> value."""
    sizes, ratio = res["sizes"], res["ratio"]
    row = {
        "median UMIs per cell": float(np.median(stats["lib"])),
        "UMIs per cell, 10th-90th percentile": _range(stats["lib"]),
        "sd of log UMIs per cell": float(np.log(stats["lib"] + 1).std()),
        "median detected genes per cell": float(np.median(stats["detected"])),
        "detected genes, 10th-90th percentile": _range(stats["detected"]),
        "zero fraction": float(stats["zero_fraction"]),
        "genes never detected": float(np.mean(stats["gene_mean"] == 0)),
        "per-gene mean, median (90th percentile)": (
            f"{np.median(stats['gene_mean']):.4f} ({np.percentile(stats['gene_mean'], 90):.3f})"
        ),
        "per-gene variance-to-mean, median (90th percentile)": (
            f"{np.median(stats['vmr']):.2f} ({np.percentile(stats['vmr'], 90):.2f})"
        ),
        "per-gene zero fraction, median (10th percentile)": (
            f"{np.median(stats['gene_zero']):.3f} ({np.percentile(stats['gene_zero'], 10):.3f})"
        ),
        "PCA variance ratio PC1 / PC2 / PC10": (
            f"{ratio[0]:.3f} / {ratio[1]:.3f} / {ratio[9]:.3f}"
        ),
        "significant PCs": res["n_sig"],
        "Leiden clusters (resolution 1.0)": int(sizes.size),
        "Leiden cluster sizes, largest / smallest (% of cells)": (
            f"{100 * sizes[0] / sizes.sum():.1f} / {100 * sizes[-1] / sizes.sum():.1f}"
        ),
    }
    for score in SCORES:
        for m in METHODS:
            row[f"{_score_name(score)} {m}"] = res["scores"][m][score]
    return row


def _score_name(score: str) -> str:
    return {"knn_accuracy": "kNN accuracy", "knc": "KNC", "cpd": "CPD"}[score]


def _range(x) -> str:
    lo, hi = np.percentile(x, [10, 90])
    return f"{lo:.0f}-{hi:.0f}"


def within(stat: str, value, real) -> str:
    """'yes' / 'no' against :data:`TOLERANCE`, '' for a statistic without one."""
    if stat not in TOLERANCE:
        return ""
    kind, bound = TOLERANCE[stat]
    off = abs(value - real) / real if kind == "relative" else abs(value - real)
    return "yes" if off <= bound + 1e-12 else "no"


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)) or float(v).is_integer() and abs(v) > 1:
        return f"{v:,.0f}"
    return f"{v:.3f}"


def table_md(rows: dict[str, dict]) -> str:
    """The table: one column per data set, the tolerance, and whether each calibrated proxy
    (version 2 on, or the candidate) is within it."""
    names = list(rows)
    judged = [n for n in names if n not in ("real", "proxy v1")]
    lines = [
        "| statistic | "
        + " | ".join(names)
        + " | tolerance | "
        + " | ".join(f"{n} within" for n in judged)
        + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " | --- |" + " --- |" * len(judged),
    ]
    for stat in rows[names[0]]:
        tol = TOLERANCE.get(stat)
        tol_text = "" if tol is None else (f"{tol[1]:.0%}" if tol[0] == "relative" else f"{tol[1]}")
        verdicts = [within(stat, rows[n][stat], rows["real"][stat]) for n in judged]
        lines.append(
            f"| {stat} | "
            + " | ".join(_fmt(rows[n][stat]) for n in names)
            + f" | {tol_text} | "
            + " | ".join(verdicts)
            + " |"
        )
    return "\n".join(lines) + "\n"


def figure(stats: dict[str, dict], results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = iter(["tab:blue", "tab:green", "tab:red", "tab:purple"])
    colours = {"real": "black", "proxy v1": "tab:orange"}
    colours.update({n: next(others) for n in stats if n not in colours})
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    ax = axes.ravel()
    for name, st in stats.items():
        kw = {"color": colours[name], "label": name, "histtype": "step", "density": True}
        ax[0].hist(np.log10(st["lib"] + 1), bins=60, **kw)
        ax[1].hist(np.log10(st["detected"] + 1), bins=60, **kw)
        gm = np.sort(np.log10(st["gene_mean"] + 1e-5))
        ax[2].plot(gm, np.linspace(0, 1, gm.size), color=colours[name], label=name)
        seen = st["gene_mean"] > 0
        ax[3].scatter(
            np.log10(st["gene_mean"][seen]), np.log10(st["vmr"]), s=3, alpha=0.4,
            color=colours[name], label=name,
        )  # fmt: skip
        ax[4].scatter(
            np.log10(st["gene_mean"] + 1e-5), st["gene_zero"], s=3, alpha=0.4,
            color=colours[name], label=name,
        )  # fmt: skip
        res = results[name]
        ratio = res["ratio"][:30]
        ax[5].plot(np.arange(1, ratio.size + 1), ratio, "o-", ms=3, color=colours[name])
        ax[5].axvline(res["n_sig"], color=colours[name], ls=":", lw=1)
        sizes = res["sizes"] / res["sizes"].sum()
        ax[6].plot(np.arange(1, sizes.size + 1), sizes, "o-", color=colours[name], label=name)
    width = 0.8 / len(stats)
    for i, name in enumerate(stats):
        acc = [results[name]["scores"][m]["knn_accuracy"] for m in METHODS]
        shift = (i - (len(stats) - 1) / 2) * width
        ax[7].bar(np.arange(len(METHODS)) + shift, acc, width, color=colours[name])
    ax[7].set_xticks(np.arange(len(METHODS)), METHODS)
    titles = [
        ("UMIs per cell", "log10(UMIs + 1)"),
        ("detected genes per cell", "log10(genes + 1)"),
        ("per-gene mean (cumulative)", "log10(mean + 1e-5)"),
        ("per-gene variance-to-mean", "log10(mean)"),
        ("per-gene zero fraction", "log10(mean + 1e-5)"),
        ("PCA variance ratio (dotted: significant PCs)", "PC"),
        ("Leiden cluster sizes (resolution 1.0)", "cluster, largest first"),
        ("kNN accuracy on Leiden labels", ""),
    ]
    for a, (title, xlabel) in zip(ax, titles, strict=True):
        a.set_title(title, fontsize=10)
        a.set_xlabel(xlabel)
    ax[0].legend()
    fig.suptitle(
        f"Proxy against the real cells: first {N_CELLS:,} cells x first {N_GENES:,} genes "
        "(benchmarks/proxy_vs_real.py)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def header(real_path: Path, seconds: dict[str, float], record: dict, shared: str) -> list[str]:
    from scdrbench.common.provenance import machine, versions
    from scdrbench.data.proxy import PROXY_VERSION

    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    return [
        "The 1.3M proxy against the real cells (benchmarks/proxy_vs_real.py)",
        f"date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {machine()}",
        f"shared with: {shared}",
        f"versions: {versions()}",
        "command: make proxy-vs-real  (python benchmarks/proxy_vs_real.py)",
        f"real: {real_path.name} ({N_CELLS:,} cells x {N_GENES:,} genes, raw UMIs); proxy "
        f"{', '.join(f'v{v}' for v in shown_versions())}: the first {N_CELLS:,} cells and "
        f"{N_GENES:,} genes of src/scdrbench/data/proxy.py's 1.3M file of that version (v{PROXY_VERSION}"
        " current)",
        "pipeline: scdrbench.stages.preprocess with config.yaml's preprocess section (normalise to 10,000, "
        "log1p, HVGs, 50 PCs, significant PCs by 10 permutations), Leiden labels (resolution "
        f"1.0) of the PCA kNN graph; methods {', '.join(METHODS)} with their config.yaml "
        f"entries, {THREADS} threads, seed {SEED}; kNN accuracy, KNC, CPD by scdrbench.metrics "
        "against the Leiden labels",
        f"time per data set (preprocess, 5 methods, scoring): {timing}",
        f"the 1.3M file on record (benchmarks/results/proxy_1m.json): version "
        f"{record.get('spec', {}).get('version', 1)}, sha256 {record.get('sha256')}",
    ]


def shown_versions() -> list[int]:
    """The proxy versions the table shows: the earlier proxy (version 1, the ladder's first
    rows) and the current one. The calibration steps between them (versions 2 and 3) stay
    reproducible (``spec_for(2)``, ``spec_for(3)``); their numbers are in the generator's
    docstring and this table's git history (each costs about 10 minutes of 2 cores to show)."""
    from scdrbench.data.proxy import PROXY_VERSION

    return sorted({1, PROXY_VERSION})


def _spec_fingerprint(spec) -> dict:
    """A spec's fields that differ from the defaults: a field added for a later version leaves
    the numbers kept for an earlier one valid."""
    from dataclasses import asdict, fields

    return {f.name: v for f, v in zip(fields(spec), asdict(spec).values()) if v != f.default}


def _cached(folder: Path, name: str, fingerprint: dict):
    """A data set's numbers computed earlier from the same data (same spec / file), or None."""
    import pickle

    path = folder / (name.replace(" ", "_") + ".pkl")
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        kept = pickle.load(fh)
    return kept["done"] if kept.get("fingerprint") == fingerprint else None


def _store(folder: Path, name: str, fingerprint: dict, done: dict) -> None:
    import pickle

    from scdrbench.common.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / (name.replace(" ", "_") + ".pkl")) as tmp, open(tmp, "wb") as fh:
        pickle.dump({"fingerprint": fingerprint, "done": done}, fh)


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=REAL, help=f"the real subset (default {REAL})")
    p.add_argument("--out", type=Path, default=OUT, help="output prefix (.md and .png added)")
    p.add_argument(
        "--shared-with", default="nothing else", help="what else ran (written into the header)"
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=["real", *(f"v{v}" for v in shown_versions())],
        help="compute only these data sets (into --keep; several processes can share the work)",
    )
    p.add_argument(
        "--candidate",
        metavar="JSON",
        help="a calibration step: the newest version with these spec fields changed, beside "
        "the real subset only; prints its rows, writes no table",
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=ROOT / "scratch" / "proxy_vs_real",
        help="each data set's numbers are kept here and reused while its data are the same",
    )
    return p.parse_args(argv)


def data_sets(a, real, pipeline: dict) -> dict:
    """name -> (loader, fingerprint): the real subset and the proxies the table shows, or the
    real subset and ``--candidate``'s spec."""
    import json

    from scdrbench.data.proxy import VERSIONS, ProxySpec, spec_for

    real_id = {"real": a.real.name, "size": a.real.stat().st_size}
    sets = {"real": (lambda: real, {**real_id, "pipeline": pipeline})}
    if a.candidate:
        try:
            spec = spec_for(max(VERSIONS), **json.loads(a.candidate))
        except (ValueError, TypeError) as err:
            raise ScdrbenchError(
                f"proxy_vs_real: --candidate {a.candidate!r} is not a JSON object of "
                f"ProxySpec fields ({', '.join(ProxySpec.__dataclass_fields__)}): {err}"
            ) from None
        load = lambda: load_proxy(spec)  # noqa: E731
        sets["candidate"] = (load, {**_spec_fingerprint(spec), "pipeline": pipeline})
        return sets
    for v in shown_versions():
        fingerprint = {**_spec_fingerprint(spec_for(v)), "pipeline": pipeline}
        sets[f"proxy v{v}"] = (lambda v=v: load_proxy(spec_for(v)), fingerprint)
    return sets


def compute(sets: dict, config: dict, keep: Path, only) -> dict:
    """Each data set's numbers, computed or kept from an earlier run: name -> done."""
    out = {}
    for name, (load, fingerprint) in sets.items():
        key = name if name != "candidate" else _candidate_key(fingerprint)
        done = _cached(keep, key, fingerprint)
        if done is None and only and name.split()[-1] not in only:
            print(f"{name}: not computed (--only {' '.join(only)})", flush=True)
            continue
        if done is None:
            t0 = time.perf_counter()
            print(f"{name}:", flush=True)
            counts = load()
            done = {"stats": count_stats(counts), "results": run_pipeline(counts, config)}
            done["seconds"] = time.perf_counter() - t0
            _store(keep, key, fingerprint, done)
        else:
            print(f"{name}: from {keep} (same data, computed earlier)", flush=True)
        out[name] = done
    return out


def _candidate_key(fingerprint: dict) -> str:
    import hashlib

    text = repr(sorted((k, v) for k, v in fingerprint.items() if k != "pipeline"))
    return "candidate_" + hashlib.sha256(text.encode()).hexdigest()[:12]


@cli_errors
def main(argv=None) -> None:
    a = _args(argv)
    import json
    import logging

    # no log file: the console is the record, and an error is its one line (cli_errors)
    logging.getLogger("scdrbench").addHandler(logging.NullHandler())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    real = load_real(a.real)  # first: a missing file stops the run before anything is computed
    from scdrbench.common.provenance import versions
    from scdrbench.common.runtime import pin_threads
    from scdrbench.stages.check_config import check

    pin_threads(THREADS)
    config = check([])
    record_path = ROOT / "benchmarks" / "results" / "proxy_1m.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    # kept numbers are reused only for the same data through the same settings and libraries
    # (a change of the project's code itself: delete --keep's folder)
    pipeline = {
        "preprocess": config["preprocess"],
        "methods": {m: {k: config["methods"][m][k] for k in COMPUTE_KEYS} for m in METHODS},
        "versions": versions(),
    }
    sets = data_sets(a, real, pipeline)
    done = compute(sets, config, a.keep, a.only)
    rows = {name: summarise(d["stats"], d["results"]) for name, d in done.items()}
    if len(rows) < len(sets):
        print(f"kept in {a.keep}; the table needs every data set: run again without --only")
        return
    if a.candidate:
        print(f"candidate {a.candidate} (nothing written):\n" + table_md(rows))
        return
    seconds = {name: d["seconds"] for name, d in done.items()}
    md = (
        "\n".join(f"> {line}  " for line in header(a.real, seconds, record, a.shared_with)) + "\n\n"
    )
    md += table_md(rows) + closing_note(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    from scdrbench.common.io import write_text

    write_text(md, a.out.with_suffix(".md"))
    stats = {name: d["stats"] for name, d in done.items()}
    figure(stats, {name: d["results"] for name, d in done.items()}, a.out.with_suffix(".png"))
    print(md)


def closing_note(rows: dict) -> str:
    """Whether each calibrated version is within every tolerance, and why not where it is not."""
    from scdrbench.data.proxy import PROXY_VERSION

    md, whys = "\n", []
    for name in [n for n in rows if n not in ("real", "proxy v1")]:
        off = [s for s in TOLERANCE if within(s, rows[name][s], rows["real"][s]) == "no"]
        current = " (the current version)" if name == f"proxy v{PROXY_VERSION}" else ""
        md += (
            f"Every calibrated statistic of {name}{current} is within its tolerance.\n"
            if not off
            else f"Outside its tolerance in {name}{current}: {', '.join(off)}.\n"
        )
        whys += [WHY_OFF[s] for s in off if s in WHY_OFF]
    for why in dict.fromkeys(whys):
        md += f"\nWhy: {why}.\n"
    return md


if __name__ == "__main__":
    main()
