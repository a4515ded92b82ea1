"""UMAP (McInnes, Healy & Melville 2018) with umap-learn.

With ``deterministic=True`` (the default) ``random_state`` is set, which makes umap-learn
reproducible but single-threaded; ``deterministic: false`` runs its nearest-neighbour descent and
its layout optimisation on all the job's threads (``n_jobs``; the fair setting at scale, used by
the scaling ladder), not reproducible. TensorFlow is kept out of the import (``BLOCKED_MODULES``):
umap-learn loads it only for ParametricUMAP.
"""

from __future__ import annotations

import logging

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._joblog import stdout_to_job_log
from scdrbench.methods._params import boolean, choice, integer, number, string

# Imported by the runner before the fit is timed.
BACKEND_MODULES = ("umap",)
BLOCKED_MODULES = ("tensorflow",)
VERSIONED = ("umap-learn", "pynndescent")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"n_epochs": 100}
PARAMS = {
    "n_neighbors": integer(15, minimum=2),
    "min_dist": number(0.1, minimum=0),
    "metric": string("euclidean"),
    "n_epochs": integer(minimum=1, description="absent: umap-learn's (200 above 10k cells)"),
    "init": choice(["spectral", "pca", "random"], "spectral"),
    "deterministic": boolean(
        True, "seeded and single-threaded (umap-learn); false: parallel, not reproducible"
    ),
    "densmap": boolean(
        False, "densMAP (Narayan, Berger & Cho 2021): also preserve each cell's local density"
    ),
    "dens_lambda": number(2.0, minimum=0, description="densMAP: weight of the density term"),
    "dens_frac": number(
        0.3, gt=0, maximum=1, description="densMAP: fraction of epochs with the density term"
    ),
    "dens_var_shift": number(0.1, minimum=0, description="densMAP: variance regulariser"),
}

log = logging.getLogger("scdrbench.methods.umap")


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    n_epochs: int | None = None,
    init: str = "spectral",
    deterministic: bool = True,
    densmap: bool = False,
    dens_lambda: float = 2.0,
    dens_frac: float = 0.3,
    dens_var_shift: float = 0.1,
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with umap-learn; returns float32 ``(n, 2)``."""
    import sys
    import warnings

    from scdrbench.methods import import_backend

    import_backend(sys.modules[__name__])
    from umap import UMAP

    X = check_input(np.asarray(X, dtype=np.float32), "umap", min_cells=4)
    check_neighbours("umap", "n_neighbors", n_neighbors, X.shape[0])
    model = UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric=metric,
        n_epochs=n_epochs,
        init=init,
        random_state=seed if deterministic else None,
        n_jobs=1 if deterministic else threads,
        densmap=densmap,
        dens_lambda=dens_lambda,
        dens_frac=dens_frac,
        dens_var_shift=dens_var_shift,
        # its steps (and pynndescent's) into the job's log, with the peak RSS at each: a job
        # stopped by its budget says where it was; no progress bar
        verbose=True,
        tqdm_kwds={"disable": True},
    )
    with warnings.catch_warnings(), stdout_to_job_log(log, "umap-learn"):
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        emb = model.fit_transform(X)
    if info is not None:
        info["n_epochs"] = int(model.n_epochs if model.n_epochs else 0)
        info["deterministic"] = bool(deterministic)
        info["densmap"] = bool(densmap)
    return np.asarray(emb, dtype=np.float32)


#: umap-learn hands graphs of this many cells and more to lobpcg instead of eigsh
#: (umap/spectral.py), which keeps no Lanczos basis.
EIGSH_BELOW = 2_000_000


#: Measured peaks of the densmap job (``densmap: true``, otherwise as MEASURED_PEAK_MB; the
#: ladder's ``deterministic: false``) on the proxy generator at 30,000 cells
#: (``src/scdrbench/data/proxy.py --n-cells 30000``, version 2) and its fixed-seed 10k subsample,
#: through the workflow's rules, 2026-12-05, on a shared 2-core machine (issue 23): cells -> MB.
MEASURED_PEAK_MB_DENSMAP = {10_000: 602, 30_000: 743}
#: densMAP's own arrays per neighbour per cell: the graph's distances kept beside the fuzzy
#: set, the per-edge density terms of the layout (about 180 bytes between the two peaks above,
#: 7.0 KB a cell against UMAP's 4.4 KB). 350 since the calibrated proxy's rungs, fitted to
#: ``densmap_pca`` (``init: pca``, no Lanczos basis to tell apart): 613, 773, 1,351 and 11,943 MB
#: at 10k, 30k, 100k and 1.3M cells (benchmarks/results/measured_peaks.tsv; its 1.3M job held
#: 11.6 GB from the fuzzy set on, 11.9 GB from the start of the layout to its end). With the
#: spectral initialisation's 11.9 GB on top, the default densMAP needs 24.2 GB at 1.3M: its
#: ladder job ran out of 22 GiB after 23 minutes (RSS read by hand: 15.8 GB at 7 min, 19.8 at
#: 14, 23.0 at 23, as ARPACK filled the Lanczos basis page by page).
DENSMAP_BYTES_PER_NEIGHBOUR = 350


def estimate_memory_mb(
    n_cells: int,
    n_features: int,
    n_neighbors: int = 15,
    init: str = "spectral",
    densmap: bool = False,
    **params,
) -> float:
    """The kNN search, graph and fuzzy set (about 220 bytes per neighbour per cell: 160 fitted
    the earlier proxy's 15.7 GB peak at 1.3M cells, and the calibrated proxy's less clustered
    graph keeps more edges in the fuzzy union, 17.1 GB), the input twice, 550 MB of libraries,
    and the spectral initialisation: umap-learn runs scipy's eigsh on the float64 normalised
    Laplacian with sqrt(n) Lanczos vectors (umap/spectral.py), n^1.5 x 8 bytes, 11.9 GB at 1.3M
    cells (the umap rows of benchmarks/results/measured_peaks.tsv, which the model stays
    above). densMAP
    adds DENSMAP_BYTES_PER_NEIGHBOUR, on top of the Lanczos vectors (its graph distances are
    kept from the fuzzy set on, through the spectral initialisation): 24.2 GB at 1.3M cells,
    over the ladder's 22 GiB, where the job ran out of memory. ``init: pca`` (``densmap_pca``)
    has no Lanczos basis: 12.2 GB at 1.3M, where its job peaked at 11.9 GB.
    """
    lanczos = n_cells**1.5 * 8 if init == "spectral" and n_cells < EIGSH_BELOW else 0.0
    graph = n_cells * n_neighbors * 220 + n_cells * n_features * 4 * 2
    if densmap:
        graph += n_cells * n_neighbors * DENSMAP_BYTES_PER_NEIGHBOUR
    return (graph + lanczos) / 1e6 + 550
