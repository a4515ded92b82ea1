"""Stability of an embedding method under its seed and under resampling of the cells.

One job per data set x method (config ``stability``): the method runs ``seeds`` times on all
cells (seeds ``seed``, ``seed + 1``, ...) and once on each of ``subsamples`` fixed-seed
subsamples of ``fraction`` of the cells, in one process (the method's libraries load once).
Every run is scored with the benchmark's metrics (:mod:`scdrbench.metrics`), and every pair of
runs of the same kind is compared on the cells they share:

- ``procrustes``: Procrustes disparity after the optimal translation, rotation (or reflection)
  and scaling (``scipy.spatial.procrustes``: both standardised, the sum of squared differences;
  0 for the same picture, up to 1);
- ``jaccard``: the mean Jaccard overlap of each cell's ``k`` nearest neighbours in the two
  embeddings (1 when every neighbourhood is the same).

A deterministic method (PCA) has zero seed spread: the same picture for every seed.
Writes ``results/stability/{dataset}/{method}.tsv`` (tidy: ``dataset, method, kind, run,
metric, value``; ``run`` is a run's name, or two names joined by ``~`` for an agreement) and
``results/stability/{dataset}/{method}.h5ad`` (each run's coordinates in ``obsm['run_<name>']``,
NaN for cells outside its subsample, seed runs aligned to the first by Procrustes; the figure's
input). The job is supervised like an embedding job: a failure or a budget overrun is recorded
as a status (``uns['status']`` and one ``status`` row) and the summary goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from itertools import combinations

import numpy as np
import pandas as pd

from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.runtime import pin_threads, setup_logging

log = logging.getLogger("scdrbench.stability")

COLUMNS = ["dataset", "method", "kind", "run", "metric", "value"]


def runs_plan(n_cells: int, *, seed: int, seeds: int, subsamples: int, fraction: float):
    """``[(name, kind, method seed, sorted cell indices)]``: the seed runs, then the subsamples."""
    if seeds < 1:
        raise ScdrbenchError(f"config key 'stability.seeds': {seeds}; give at least 1")
    if not 0 < fraction <= 1:
        raise ScdrbenchError(
            f"config key 'stability.fraction': {fraction} is outside (0, 1]; e.g. 0.8"
        )
    plan = [(f"seed{seed + i}", "seed", seed + i, np.arange(n_cells)) for i in range(seeds)]
    size = max(3, int(round(fraction * n_cells)))
    for j in range(subsamples):
        rng = np.random.default_rng([seed, 77, j])
        cells = np.sort(rng.choice(n_cells, size=min(size, n_cells), replace=False))
        plan.append((f"sub{j + 1}", "subsample", seed, cells))
    return plan


def procrustes_disparity(a: np.ndarray, b: np.ndarray) -> float:
    """Disparity after the optimal similarity transform (0 = same picture)."""
    from scipy.spatial import procrustes

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(procrustes(np.asarray(a, float), np.asarray(b, float))[2])


def knn_jaccard(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean Jaccard overlap of each cell's ``k`` nearest neighbours in ``a`` and in ``b``."""
    from scdrbench.metrics.base import neighbour_distances

    n = len(a)
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    idx = np.arange(n)
    na = neighbour_distances(np.asarray(a, float), idx, k)[0]
    nb = neighbour_distances(np.asarray(b, float), idx, k)[0]
    inter = (na[:, :, None] == nb[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(inter / (2 * k - inter)))


def align(reference: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """``emb`` moved onto ``reference`` by the optimal rotation, scaling and translation."""
    from scipy.linalg import orthogonal_procrustes

    mu_r, mu_e = reference.mean(axis=0), emb.mean(axis=0)
    r, e = reference - mu_r, emb - mu_e
    rot, scale = orthogonal_procrustes(e, r)
    return (e @ rot) * (scale / max(float((e**2).sum()), 1e-12)) + mu_r


def agreement_rows(runs: dict, plan, k: int) -> list[dict]:
    """Pairwise agreements of the runs of the same kind, on the cells they share."""
    rows = []
    for kind in ("seed", "subsample"):
        named = [(name, cells) for name, kd, _, cells in plan if kd == kind and name in runs]
        for (n1, c1), (n2, c2) in combinations(named, 2):
            shared, i1, i2 = np.intersect1d(c1, c2, return_indices=True)
            if len(shared) < 3:
                continue
            a, b = runs[n1][i1], runs[n2][i2]
            pair = f"{n1}~{n2}"
            rows.append(
                {
                    "kind": kind,
                    "run": pair,
                    "metric": "procrustes",
                    "value": procrustes_disparity(a, b),
                }
            )
            rows.append(
                {"kind": kind, "run": pair, "metric": "jaccard", "value": knn_jaccard(a, b, k)}
            )
    return rows


def main(
    pca_path,
    output_tsv,
    output_h5ad,
    *,
    dataset,
    method,
    entry,
    seed,
    seeds,
    subsamples,
    fraction,
    k,
    threads=1,
    log_path=None,
):
    """Run the plan, score every run, compare the runs, write both files."""
    import anndata as ad

    from scdrbench.common.io import read_h5ad, write_h5ad, write_table
    from scdrbench.metrics.registry import score_embedding
    from scdrbench.stages.embed import protein_counts, run_method, select_input

    setup_logging(log_path)
    pin_threads(threads)
    data = read_h5ad(pca_path, what="dataset file")
    X = select_input(data, entry["input"])
    ref = np.asarray(data.obsm["X_pca"])
    labels = data.obs["label"].astype(str).to_numpy()
    protein = protein_counts(data)
    plan = runs_plan(data.n_obs, seed=seed, seeds=seeds, subsamples=subsamples, fraction=fraction)
    runs, rows = {}, []
    for name, kind, run_seed, cells in plan:
        x = X[cells]
        emb, _, seconds = run_method(
            x,
            algorithm=entry["algorithm"],
            params=entry["params"],
            seed=run_seed,
            threads=threads,
            obs_names=data.obs_names.to_numpy()[cells],
            protein=None if protein is None else protein[cells],
        )
        emb = emb[:, :2]
        runs[name] = emb
        log.info("%s: %s run %s (%d cells) in %.1f s", method, kind, name, len(cells), seconds)
        table = score_embedding(emb, ref[cells], labels[cells], seed=seed, n_jobs=threads)
        rows += [
            {"kind": kind, "run": name, "metric": r.metric, "value": r.value}
            for r in table.itertuples()
        ]
        rows.append({"kind": kind, "run": name, "metric": "fit_seconds", "value": seconds})
    rows += agreement_rows(runs, plan, k)
    df = pd.DataFrame(rows)
    df.insert(0, "method", method)
    df.insert(0, "dataset", dataset)
    write_table(df[COLUMNS], output_tsv)
    first = plan[0][0]
    obsm = {}
    for name, kind, _, cells in plan:
        coords = np.full((data.n_obs, 2), np.nan, dtype=np.float32)
        coords[cells] = align(runs[first], runs[name]) if kind == "seed" else runs[name]
        obsm[f"run_{name}"] = coords
    # categorical already: anndata would convert it while writing and say so on the console
    obs = pd.DataFrame({"label": pd.Categorical(labels)}, index=data.obs_names.copy())
    out = ad.AnnData(obs=obs, obsm=obsm)
    out.uns.update(
        {
            "dataset_id": dataset,
            "method_id": method,
            "method_label": entry["label"],
            "status": "ok",
            "status_message": "ok",
            "plan": json.dumps([[n, kd, int(s)] for n, kd, s, _ in plan]),
        }
    )
    write_h5ad(out, output_h5ad)
    log.info("wrote %s and %s", output_tsv, output_h5ad)


def write_status_record(pca_path, output_tsv, output_h5ad, *, dataset, method, entry, message):
    """A failed stability job: one ``status`` row and an h5ad with the status, no runs."""
    import anndata as ad

    from scdrbench.common.io import read_h5ad, write_h5ad, write_table

    row = {
        "dataset": dataset,
        "method": method,
        "kind": "status",
        "run": "",
        "metric": message,
        "value": np.nan,
    }
    write_table(pd.DataFrame([row], columns=COLUMNS), output_tsv)
    data = read_h5ad(pca_path, what="dataset file", backed=True)
    out = ad.AnnData(obs=pd.DataFrame(index=data.obs_names.copy()))
    out.uns.update(
        {
            "dataset_id": dataset,
            "method_id": method,
            "method_label": entry["label"],
            "status": "error",
            "status_message": message,
            "plan": "[]",
        }
    )
    data.file.close()
    write_h5ad(out, output_h5ad)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="results/data/{dataset}/pca.h5ad")
    p.add_argument("--tsv", required=True)
    p.add_argument("--h5ad", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--entry", required=True, help="the method's registry entry as JSON")
    p.add_argument("--stability", required=True, help="the config's stability section as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log")
    from scdrbench.common.supervise import add_budget_arguments

    add_budget_arguments(p)
    return p.parse_args(argv)


@cli_errors
def _child(a) -> None:
    st = json.loads(a.stability)
    main(
        a.input,
        a.tsv,
        a.h5ad,
        dataset=a.dataset,
        method=a.method,
        entry=json.loads(a.entry),
        seed=a.seed,
        seeds=st["seeds"],
        subsamples=st["subsamples"],
        fraction=st["fraction"],
        k=st["k"],
        threads=a.threads,
        log_path=a.log,
    )


def cli(argv=None) -> None:
    """Supervise the job (the parent), or run it (``--child``)."""
    from scdrbench.common import supervise as sv

    argv = list(sys.argv[1:] if argv is None else argv)
    a = _parse(argv)

    def record(outcome, budget):
        write_status_record(
            a.input,
            a.tsv,
            a.h5ad,
            dataset=a.dataset,
            method=a.method,
            entry=json.loads(a.entry),
            message=outcome.message,
        )

    sv.run_job(
        "scdrbench.stages.stability",
        argv,
        a,
        child=_child,
        record=record,
        what=f"stability {a.dataset}/{a.method}",
        outputs=[a.tsv, a.h5ad],
        inputs=[a.input],
    )


if __name__ == "__main__":
    cli()
