"""The metric registry: one declaration per metric, and scoring as a loop over it.

Each :class:`Metric` names what it needs (labels, how many classes, how many cells) and how it
is computed from a :class:`Context`, which holds the embedding, the reference (the data set's
50 PCs), the labels and the sizes, and computes once what several metrics share: the exact
neighbours of the query cells in both spaces (KNN and density) and the co-ranking curve (four
co-ranking metrics). Adding a metric is one entry in :data:`REGISTRY` and its function.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from scdrbench.common.errors import ScdrbenchError
from scdrbench.metrics.base import (
    _TREE_MAX_DIMS,
    CORANK_CELLS,
    CPD_CELLS,
    CV_FOLDS,
    DCOR_CELLS,
    DENSITY_K,
    K_NEIGHBOURS,
    KNN_QUERY_CELLS,
    SILHOUETTE_CELLS,
    SKLEARN_WORKING_MEMORY_MB,
    TC_CELLS,
    TC_K,
    classifier_cells,
    encode_labels,
    label_problem,
    neighbour_distances,
    subsample_indices,
)
from scdrbench.metrics.corank import (
    density_preservation,
    distance_correlation,
    lcmc_split,
    qnx_auc,
    qnx_curve,
)
from scdrbench.metrics.labelled import knc_n_neighbours, knc_preservation, knn_accuracy, silhouette
from scdrbench.metrics.structure import continuity, cpd, trustworthiness

log = logging.getLogger("scdrbench.metrics")


@dataclass
class Context:
    """One embedding with its reference and labels, and what several metrics share."""

    emb: np.ndarray
    ref: np.ndarray
    labels: np.ndarray
    seed: int
    n_jobs: int | None = None
    k: int = K_NEIGHBOURS
    folds: int = CV_FOLDS
    knn_query_cells: int | None = KNN_QUERY_CELLS
    cpd_cells: int = CPD_CELLS
    tc_cells: int = TC_CELLS
    tc_k: int = TC_K
    silhouette_cells: int = SILHOUETTE_CELLS
    corank_cells: int = CORANK_CELLS
    density_k: int = DENSITY_K
    dcor_cells: int = DCOR_CELLS
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return self.ref.shape[0]

    @cached_property
    def codes(self) -> tuple[np.ndarray, int]:
        return encode_labels(self.labels)

    @property
    def n_classes(self) -> int:
        return self.codes[1]

    @property
    def n_labelled(self) -> int:
        return int(np.count_nonzero(self.codes[0] >= 0))

    @cached_property
    def query(self) -> np.ndarray:
        return subsample_indices(self.n, self.knn_query_cells, self.seed)

    @cached_property
    def neighbours(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Exact neighbours (indices, distances) of the query cells among all cells, both spaces,
        as many as KNN and density need."""
        k = min(max(self.k, self.density_k), self.n - 1)
        return {
            name: neighbour_distances(x, self.query, k, n_jobs=self.n_jobs)
            for name, x in (("ref", self.ref), ("emb", self.emb))
        }

    @cached_property
    def qnx(self) -> np.ndarray:
        return qnx_curve(self.ref, self.emb, n=self.corank_cells, seed=self.seed)

    def sub(self, m: int, total: int, what: str = "cells") -> str:
        if m == total:
            return f"all {what}"
        return f"fixed-seed subsample of {m} of {total} {what}"


def _knn(ctx: Context) -> float:
    k = min(ctx.k, ctx.n - 1)
    ref_nb, emb_nb = ctx.neighbours["ref"][0][:, :k], ctx.neighbours["emb"][0][:, :k]
    from scdrbench.metrics.base import _overlap_fraction

    return float(_overlap_fraction(ref_nb, emb_nb).mean())


def _density(ctx: Context) -> float:
    pair = (ctx.neighbours["ref"][1], ctx.neighbours["emb"][1])
    return density_preservation(ctx.ref, ctx.emb, k=ctx.density_k, neighbours=pair)


def _tc_k(ctx: Context) -> int:
    return min(ctx.tc_k, (len(subsample_indices(ctx.n, ctx.tc_cells, ctx.seed)) - 1) // 2)


def _tc_describe(ctx: Context) -> tuple[int, str]:
    """Trustworthiness and continuity share their subsample."""
    m = len(subsample_indices(ctx.n, ctx.tc_cells, ctx.seed))
    return m, f"k={_tc_k(ctx)}, " + ctx.sub(m, ctx.n)


@dataclass(frozen=True)
class Metric:
    """A metric: its name, how it is computed, what it needs and how its scope is described."""

    name: str
    compute: Callable[[Context], float]
    describe: Callable[[Context], tuple[int, str]]
    needs_labels: bool = False
    min_classes: int = 2
    min_cells: int = 2
    higher_is_better: bool = True
    reference: str = ""

    def problem(self, ctx: Context) -> str | None:
        """Why the metric does not apply to this input (None when it does)."""
        if ctx.n < self.min_cells:
            return f"not applicable: fewer than {self.min_cells} cells"
        if self.needs_labels:
            note = label_problem(ctx.labels, min_classes=2)
            if note:
                return note
            if ctx.n_classes < self.min_classes:
                return (
                    f"not applicable: {ctx.n_classes} labels, {self.name} needs at least "
                    f"{self.min_classes} (with 2, each class mean's only neighbour is the "
                    "other: always 1)"
                )
        return None


def _unlabelled(ctx: Context) -> str:
    """The note's count of cells left out for want of a label (unlisted, empty, unlabelled)."""
    left = ctx.n - ctx.n_labelled
    return f"; {left} cells without a label left out" if left else ""


def _method(ctx: Context) -> str:
    return "KD-tree" if ctx.emb.shape[1] <= _TREE_MAX_DIMS else "brute force"


def _corank_note(ctx: Context) -> tuple[int, str]:
    m = len(subsample_indices(ctx.n, ctx.corank_cells, ctx.seed))
    return m, f"co-ranking matrix of a {ctx.sub(m, ctx.n)}"


REGISTRY: tuple[Metric, ...] = (
    Metric(
        "knn_accuracy",
        lambda c: knn_accuracy(c.emb, c.labels, k=c.k, folds=c.folds, seed=c.seed, n_jobs=c.n_jobs),
        lambda c: (
            (m := len(classifier_cells(c.n_labelled, c.emb.shape[1], c.seed))),
            f"k={c.k}, {c.folds}-fold cross-validation, exact {_method(c)} kNN on "
            + (
                "the labelled cells"
                if m == c.n_labelled
                else f"a {c.sub(m, c.n_labelled, 'labelled cells')}"
            )
            + _unlabelled(c),
        ),
        needs_labels=True,
        reference="Ding, Condon & Shah 2018, doi:10.1038/s41467-018-04368-5",
    ),
    Metric(
        "knn",
        _knn,
        lambda c: (
            len(c.query),
            f"k={c.k}; exact neighbours among all {c.n} cells (reference: "
            f"{'KD-tree' if c.ref.shape[1] <= _TREE_MAX_DIMS else 'chunked brute force'}, "
            f"embedding: {_method(c)}) of "
            + (
                "every cell"
                if len(c.query) == c.n
                else f"a fixed-seed subsample of {len(c.query)} query cells"
            ),
        ),
        reference="Kobak & Berens 2019, doi:10.1038/s41467-019-13056-x",
    ),
    Metric(
        "knc",
        lambda c: knc_preservation(c.ref, c.emb, c.labels, k=c.k),
        lambda c: (
            c.n_labelled,
            f"k={knc_n_neighbours(c.n_classes, c.k)} nearest of {c.n_classes} class "
            "means (at most half of the other classes)" + _unlabelled(c),
        ),
        needs_labels=True,
        min_classes=3,
        reference="Kobak & Berens 2019",
    ),
    Metric(
        "cpd",
        lambda c: cpd(c.ref, c.emb, n=c.cpd_cells, seed=c.seed),
        lambda c: (
            len(subsample_indices(c.n, c.cpd_cells, c.seed)),
            "Spearman of pairwise distances, " + c.sub(min(c.n, c.cpd_cells), c.n),
        ),
        min_cells=3,
        reference="Kobak & Berens 2019",
    ),
    Metric(
        "trustworthiness",
        lambda c: trustworthiness(c.ref, c.emb, k=c.tc_k, n=c.tc_cells, seed=c.seed),
        _tc_describe,
        min_cells=3,
        reference="Venna & Kaski 2001",
    ),
    Metric(
        "continuity",
        lambda c: continuity(c.ref, c.emb, k=c.tc_k, n=c.tc_cells, seed=c.seed),
        _tc_describe,
        min_cells=3,
        reference="Venna & Kaski 2001",
    ),
    Metric(
        "silhouette",
        lambda c: silhouette(c.emb, c.labels, n=c.silhouette_cells, seed=c.seed),
        lambda c: (
            min(c.n_labelled, c.silhouette_cells),
            "of the labels, "
            + c.sub(min(c.n_labelled, c.silhouette_cells), c.n_labelled, "labelled cells")
            + _unlabelled(c),
        ),
        needs_labels=True,
        reference="Rousseeuw 1987",
    ),
    Metric(
        "qnx_auc",
        lambda c: qnx_auc(c.qnx),
        lambda c: (_corank_note(c)[0], "AUC of R_NX(K) on a log K scale, " + _corank_note(c)[1]),
        min_cells=4,
        reference="Lee, Peluffo-Ordonez & Verleysen 2015, doi:10.1016/j.neucom.2014.12.095",
    ),
    Metric(
        "lcmc",
        lambda c: lcmc_split(c.qnx)[0],
        lambda c: (_corank_note(c)[0], "max over K of LCMC(K), " + _corank_note(c)[1]),
        min_cells=4,
        reference="Chen & Buja 2009, doi:10.1198/jasa.2009.0111",
    ),
    Metric(
        "q_local",
        lambda c: lcmc_split(c.qnx)[1],
        lambda c: (_corank_note(c)[0], "mean Q_NX(K), K <= K_max, " + _corank_note(c)[1]),
        min_cells=4,
        reference="Lee & Verleysen 2009, doi:10.1016/j.neucom.2008.12.017",
    ),
    Metric(
        "q_global",
        lambda c: lcmc_split(c.qnx)[2],
        lambda c: (_corank_note(c)[0], "mean Q_NX(K), K > K_max, " + _corank_note(c)[1]),
        min_cells=4,
        reference="Lee & Verleysen 2009",
    ),
    Metric(
        "density",
        _density,
        lambda c: (
            len(c.query),
            f"Pearson of log mean distance to the {min(c.density_k, c.n - 1)} nearest "
            "neighbours, the KNN query cells",
        ),
        min_cells=3,
        reference="Narayan, Berger & Cho 2021, doi:10.1038/s41587-020-00801-7",
    ),
    Metric(
        "dcor",
        lambda c: distance_correlation(c.ref, c.emb, n=c.dcor_cells, seed=c.seed),
        lambda c: (
            len(subsample_indices(c.n, c.dcor_cells, c.seed)),
            "distance correlation, " + c.sub(min(c.n, c.dcor_cells), c.n, "landmark cells"),
        ),
        min_cells=3,
        reference="Szekely, Rizzo & Bakirov 2007, doi:10.1214/009053607000000505",
    ),
)

#: Metric ids in table order.
METRICS = tuple(m.name for m in REGISTRY)
HIGHER_IS_BETTER = {m.name: m.higher_is_better for m in REGISTRY}


def score_embedding(emb, ref, labels, *, seed: int, n_jobs: int | None = None, only=None, **sizes):
    """Run every metric of :data:`REGISTRY` and return one tidy row per metric.

    ``sizes`` override the :class:`Context` defaults (``k``, ``folds``, ``knn_query_cells``,
    ``cpd_cells``, ``tc_cells``, ``tc_k``, ``silhouette_cells``, ``corank_cells``, ``density_k``,
    ``dcor_cells``). Columns: ``metric, value, higher_is_better, n_cells_scored, note,
    seconds``. A metric that does not apply has value NaN and a note starting "not applicable";
    an embedding with non-finite coordinates gets NaN everywhere and a note starting "not
    scored" (scoring only its finite cells would flatter a method that failed on some).
    """
    import sklearn

    emb, ref = np.asarray(emb), np.asarray(ref)
    labels = np.asarray(labels, dtype=object)
    if emb.ndim != 2 or ref.ndim != 2:
        raise ScdrbenchError(
            f"embedding and reference must be 2-D arrays (got shapes {emb.shape} and {ref.shape})"
        )
    n = ref.shape[0]
    if emb.shape[0] != n:
        raise ScdrbenchError(f"embedding has {emb.shape[0]} cells but the reference has {n}")
    if labels.shape != (n,):
        raise ScdrbenchError(f"{labels.shape[0]} labels for {n} cells")
    if not np.isfinite(ref).all():
        raise ScdrbenchError("the reference (PCs) holds NaN or infinite values")
    ctx = Context(emb=emb, ref=ref, labels=labels, seed=seed, n_jobs=n_jobs, **sizes)
    n_bad = int(np.count_nonzero(~np.isfinite(emb).all(axis=1)))
    rows = []
    for metric in REGISTRY if only is None else only:
        started = time.perf_counter()
        problem = metric.problem(ctx)
        if n_bad:
            value, n_scored = float("nan"), 0
            note = (
                f"not scored: {n_bad} of {n} cells have non-finite (NaN/inf) coordinates; "
                "the method failed"
            )
        elif problem:
            value, n_scored, note = float("nan"), 0, problem
        else:
            n_scored, note = metric.describe(ctx)
            with sklearn.config_context(working_memory=SKLEARN_WORKING_MEMORY_MB):
                value = metric.compute(ctx)
            if np.isnan(value):
                note = f"undefined (NaN) for this input; {note}"
        seconds = time.perf_counter() - started
        log.info("%s = %.4f (%.1f s; %s)", metric.name, value, seconds, note)
        rows.append(
            {
                "metric": metric.name,
                "value": value,
                "higher_is_better": metric.higher_is_better,
                "n_cells_scored": int(n_scored),
                "note": note,
                "seconds": seconds,
            }
        )
    return pd.DataFrame(rows)
