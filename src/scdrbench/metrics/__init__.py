"""The benchmark's quality metrics, declared once each in :mod:`.registry` (what they need, how
they are computed and described) and defined in :mod:`.labelled` (kNN accuracy, KNC,
silhouette), :mod:`.structure` (KNN, CPD, trustworthiness, continuity) and :mod:`.corank` (the
co-ranking family, density preservation, distance correlation); :mod:`.base` holds the sizes,
fixed-seed subsamples and exact neighbour searches they share. Nothing is quadratic in the
number of cells. The scoring job (files in, metrics TSV out) is :mod:`.score`.
"""

from scdrbench.metrics.base import subsample_indices
from scdrbench.metrics.corank import (
    density_preservation,
    distance_correlation,
    lcmc_split,
    qnx_auc,
    qnx_curve,
)
from scdrbench.metrics.labelled import knc_n_neighbours, knc_preservation, knn_accuracy, silhouette
from scdrbench.metrics.registry import HIGHER_IS_BETTER, METRICS, REGISTRY, score_embedding
from scdrbench.metrics.structure import continuity, cpd, knn_preservation, trustworthiness

# fmt: off
__all__ = [
    "HIGHER_IS_BETTER", "METRICS", "REGISTRY", "score_embedding", "subsample_indices",
    "continuity", "cpd", "knn_preservation", "trustworthiness",
    "density_preservation", "distance_correlation", "lcmc_split", "qnx_auc", "qnx_curve",
    "knc_n_neighbours", "knc_preservation", "knn_accuracy", "silhouette",
]
# fmt: on
