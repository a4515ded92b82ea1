"""The scoring job: score a 2-D embedding against the dataset's 50-PC reference.

The metrics themselves are declared in :mod:`scdrbench.metrics.registry`. This module reads
the embedding and the dataset's ``pca.h5ad``, checks that they describe the same cells in the
same order, and writes ``results/metrics/{dataset}/{method}.tsv``; as a job it runs supervised
(:mod:`scdrbench.common.supervise`), so a scoring job that fails or runs past its budget still
writes the file, every metric NaN with the reason in ``note``. Its command line is
``python scripts/score.py`` (the rule) or ``python -m scdrbench.metrics``.

Non-finite coordinates: a method that diverges (NaN/inf) gets every metric reported as NaN with a
note saying how many cells were affected, instead of an error. A non-finite *reference* is a bug
of the preprocessing step and raises an error naming the file.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scdrbench.common import embedding_file
from scdrbench.common.errors import DamagedInputError, ScdrbenchError, cli_errors
from scdrbench.common.io import read_h5ad_parts
from scdrbench.metrics.base import encode_labels
from scdrbench.metrics.registry import HIGHER_IS_BETTER, METRICS, REGISTRY, score_embedding

log = logging.getLogger("scdrbench.metrics")


COLUMNS = [
    "dataset",
    "method",
    "metric",
    "value",
    "higher_is_better",
    "n_cells_scored",
    "seed",
    "note",
    "control",
]
#: the reference's label columns: its own labels, and when present the RNA clusters of a
#: CITE-seq data set and Leiden clusters of the PCs (``labels: {leiden_beside: true}``)
OBS_COLUMNS = ("label", "rna_leiden", "leiden")


def _read_reference(path):
    """``(obs_names, obsm['X_pca'], {'label', 'rna_leiden', 'leiden': values or None})`` of the
    dataset's ``pca.h5ad``; the count matrix is never read."""
    import h5py

    from scdrbench.common.io import rebuild_hint

    path = Path(path)
    if not path.exists():
        raise DamagedInputError(f"dataset file {path} does not exist; {rebuild_hint(path)}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DamagedInputError(
            f"dataset file {path} is not a readable h5ad file ({err}); {rebuild_hint(path)}"
        ) from None
    with f:
        if "obs" not in f or "obsm" not in f or "X_pca" not in f["obsm"]:
            raise ScdrbenchError(f"dataset file {path} has no obsm['X_pca']")
        names, ref, columns, _ = read_h5ad_parts(f, "X_pca", obs_columns=OBS_COLUMNS)
    if columns["label"] is None:
        raise ScdrbenchError(f"dataset file {path} has no obs['label']")
    return names, ref, columns


def main(
    embedding_path,
    dataset_path,
    output_path,
    *,
    dataset: str,
    method: str,
    seed: int,
    log_path=None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Score one embedding file against its dataset's ``pca.h5ad`` and write the metrics TSV.

    Parameters
    ----------
    embedding_path : path
        ``results/embed/{dataset}/{method}.h5ad`` (``obsm['X_emb']``, obs_names; ``uns``
        ``dataset_id``, ``method_id``, ``seed``).
    dataset_path : path
        ``results/data/{dataset}/pca.h5ad`` (``obsm['X_pca']``, ``obs['label']``, obs_names);
        the count matrix is never read.
    output_path : path
        ``results/metrics/{dataset}/{method}.tsv``, written atomically with columns
        :data:`COLUMNS`.
    dataset, method : str
        Ids written into the table; checked against the embedding's ``uns`` when present.
    seed : int
        Seed of the subsamples and folds, written into the table.
    log_path : path or None
        Log file (stderr when None).
    threads : int or None
        Threads for the neighbour searches and BLAS; None keeps the thread pools as the
        environment set them (``OMP_NUM_THREADS``, as the Snakemake rule does) and uses that many.

    Raises
    ------
    ScdrbenchError
        When a file is missing or unreadable, or the embedding does not describe the dataset's
        cells in the dataset's order (the message names both files).
    """
    # Longer than 80 lines: the docstring states the file contract of the job's inputs and output;
    # the code is 44 lines.
    from scdrbench.common.io import write_table
    from scdrbench.common.runtime import peak_rss_mb, pin_threads, setup_logging

    logger = setup_logging(log_path)
    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    else:
        pin_threads(threads)
    started = time.perf_counter()
    names, emb, uns = embedding_file.read_coordinates(
        embedding_path,
        uns_keys=("dataset_id", "method_id", "seed", "status", "status_message", "control"),
    )
    logger.info("read embedding %s: %s, uns %s", embedding_path, emb.shape, uns)
    ref_names, ref, columns = _read_reference(dataset_path)
    logger.info("read reference %s: %s %s", dataset_path, ref.shape, ref.dtype)
    _check_pair(embedding_path, dataset_path, uns, names, ref_names, emb, ref, dataset, method)
    if emb.ndim == 2 and (n_bad := int(np.count_nonzero(~np.isfinite(emb).all(axis=1)))):
        logger.warning(
            "embedding %s: %d of %d cells have non-finite coordinates; every metric is "
            "reported as NaN",
            *(embedding_path, n_bad, emb.shape[0]),
        )

    if str(uns.get("status", "ok")) != "ok":
        message = uns.get("status_message", uns["status"])
        logger.warning("embedding %s is a status record: %s; not scored", embedding_path, message)
        table = not_scored_table(f"not scored: the embedding job ended with {message}")
    else:
        table = _scores(emb, ref, columns, seed, threads)
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    table["seed"] = seed
    table["control"] = str(uns.get("control", "") or "")
    table = table[COLUMNS]
    write_table(table, output_path)
    logger.info(
        "wrote %s: %d metrics in %.1f s, peak RSS %.0f MB",
        output_path,
        len(table),
        time.perf_counter() - started,
        peak_rss_mb(),
    )
    return table


def _check_pair(embedding_path, dataset_path, uns, names, ref_names, emb, ref, dataset, method):
    """The embedding is this job's and lists the dataset's cells in its order; the reference is
    finite. Else one line naming both files and the command that rebuilds the wrong one."""
    from scdrbench.common.io import rebuild_hint

    for key, expected in (("dataset_id", dataset), ("method_id", method)):
        if key in uns and str(uns[key]) != expected:
            raise ScdrbenchError(
                f"embedding {embedding_path} has uns['{key}'] = {uns[key]!r}, expected "
                f"{expected!r}; it belongs to another job: {rebuild_hint(embedding_path)}"
            )
    if len(names) != len(ref_names) or emb.shape[0] != len(names):
        raise ScdrbenchError(
            f"embedding {embedding_path} has {emb.shape[0]} cells but dataset file "
            f"{dataset_path} has {len(ref_names)}; {rebuild_hint(embedding_path)}"
        )
    if not np.array_equal(names, ref_names):
        first = int(np.flatnonzero(names != ref_names)[0])
        raise ScdrbenchError(
            f"embedding {embedding_path} lists its cells in a different order or with different "
            f"names than dataset file {dataset_path} (first difference at position {first}: "
            f"{names[first]!r} vs {ref_names[first]!r}); {rebuild_hint(embedding_path)}"
        )
    if ref.ndim != 2 or not np.isfinite(ref).all():
        raise ScdrbenchError(
            f"dataset file {dataset_path}: obsm['X_pca'] is not a finite 2-D array; "
            f"{rebuild_hint(dataset_path)}"
        )


def _scores(emb, ref, columns, seed, threads) -> pd.DataFrame:
    """Every metric against the data set's labels, and against its RNA clusters and Leiden
    clusters where it has them."""
    table = score_embedding(emb, ref, columns["label"], seed=seed, n_jobs=threads)
    if columns["rna_leiden"] is not None:
        table = pd.concat(
            [
                table,
                *protein_set_tables(
                    emb, ref, columns["label"], columns["rna_leiden"], seed, threads
                ),
            ],
            ignore_index=True,
        )
    if columns["leiden"] is not None:
        table = pd.concat([table, leiden_table(emb, ref, columns["leiden"], seed, threads)])
        table = table.reset_index(drop=True)
    return table


def leiden_table(emb, ref, leiden, seed, threads) -> pd.DataFrame:
    """The label metrics against Leiden clusters of the data set's PCs (``<metric>_leiden``),
    beside the same metrics against its own labels: a data set whose labels separate more
    cleanly than the clusters a run on real data would find (the proxy's simulated types) is
    scored both ways (``labels: {leiden_beside: true}``)."""
    label_metrics = [m for m in REGISTRY if m.needs_labels]
    out = score_embedding(emb, ref, leiden, seed=seed, n_jobs=threads, only=label_metrics)
    out["metric"] = out["metric"] + "_leiden"
    out["note"] = "against Leiden clusters of the PCs (obs['leiden']); " + out["note"]
    return out


def protein_set_tables(emb, ref, labels, rna_labels, seed, threads) -> list[pd.DataFrame]:
    """For a data set with protein counts (CITE-seq): the label metrics against the RNA
    clusters (``<metric>_rna_labels``: labels from proteins make a method that sees the proteins
    look better than it is), and each label's kNN recall (``recall:<label>``: which populations
    an embedding separates)."""
    from scdrbench.metrics.base import classifier_cells
    from scdrbench.metrics.labelled import knn_recall_per_label

    label_metrics = [m for m in REGISTRY if m.needs_labels]
    rna = score_embedding(emb, ref, rna_labels, seed=seed, n_jobs=threads, only=label_metrics)
    rna["metric"] = rna["metric"] + "_rna_labels"
    rna["note"] = "against the RNA Leiden clusters (obs['rna_leiden']); " + rna["note"]
    recall = knn_recall_per_label(emb, labels, seed=seed, n_jobs=threads)
    rows = pd.DataFrame(
        {
            "metric": [f"recall:{k}" for k in recall],
            "value": list(recall.values()),
            "higher_is_better": True,
            "n_cells_scored": len(
                classifier_cells(
                    int(np.count_nonzero(encode_labels(labels)[0] >= 0)), emb.shape[1], seed
                )
            ),
            "note": "fraction of the label's cells whose 10-NN classifier vote (5-fold) is right",
            "seconds": np.nan,
        }
    )
    return [rna, rows]


def not_scored_table(note: str) -> pd.DataFrame:
    """Every metric NaN with the same note (a failed embedding or scoring job)."""
    return pd.DataFrame(
        {
            "metric": list(METRICS),
            "value": float("nan"),
            "higher_is_better": [HIGHER_IS_BETTER[m] for m in METRICS],
            "n_cells_scored": 0,
            "note": note,
            "seconds": float("nan"),
        }
    )


def write_status_record(output_path, *, dataset: str, method: str, seed: int, message: str):
    """A failed scoring job's metrics file: every metric NaN, the note says why."""
    from scdrbench.common.io import write_table

    table = not_scored_table(f"not scored: the score job ended with {message}")
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    table["seed"] = seed
    table["control"] = ""
    write_table(table[COLUMNS], output_path)


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", required=True, help="results/embed/{dataset}/{method}.h5ad")
    parser.add_argument("--dataset-file", required=True, help="results/data/{dataset}/pca.h5ad")
    parser.add_argument("--output", required=True, help="results/metrics/{dataset}/{method}.tsv")
    parser.add_argument("--dataset", required=True, help="dataset id")
    parser.add_argument("--method", required=True, help="method id")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--log", default=None, help="log file (default: stderr)")
    parser.add_argument(
        "--threads", type=int, default=None, help="default: $OMP_NUM_THREADS, else 1"
    )
    from scdrbench.common.supervise import add_budget_arguments

    add_budget_arguments(parser)
    return parser.parse_args(argv)


def cli(argv=None) -> None:
    """Command-line entry point: supervise the scoring (see :mod:`scdrbench.common.supervise`)."""
    import sys

    from scdrbench.common import supervise as sv

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(argv)

    def record(outcome, budget):
        write_status_record(
            args.output,
            dataset=args.dataset,
            method=args.method,
            seed=args.seed,
            message=outcome.message,
        )

    sv.run_job(
        "scdrbench.metrics",
        argv,
        args,
        child=_child,
        record=record,
        what=f"scoring {args.dataset}/{args.method}",
        outputs=[args.output],
        inputs=[args.embedding, args.dataset_file],
    )


@cli_errors
def _child(args) -> None:
    """Score (the supervised child)."""
    main(
        args.embedding,
        args.dataset_file,
        args.output,
        dataset=args.dataset,
        method=args.method,
        seed=args.seed,
        log_path=args.log,
        threads=args.threads,
    )
