"""The embedding file contract, ``results/embed/{dataset}/{method}.h5ad``: written, read and
checked here only.

Contents: ``obs_names`` and ``obs['label']`` of the data set (same order), ``obsm['X_emb']``
(n_cells x 2 float32; n_cells x input dims for the ``true_features`` control) and ``uns``:
``dataset_id``, ``method_id``, ``method_label``, ``algorithm``, ``params`` (JSON), ``seed``,
``threads``, ``input``, ``input_dims``, ``control``, ``fit_seconds``, ``fit_cpu_seconds``,
``cpu_seconds``, ``peak_rss_mb`` (and their ``*_repeats``), ``versions``, ``info``, ``host``,
``slurm_job_id``, and the job's ``status`` (``ok``, or how it ended: a *status record* has NaN
coordinates), ``status_message``, ``budget`` and ``retry_token``. No count matrix is stored.

Every reader turns a missing or unreadable file into one line naming the file and the command
that rebuilds it (:class:`EmbeddingFileError`), never a traceback from h5py.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scdrbench.common.errors import DamagedInputError
from scdrbench.common.io import rebuild_hint

EMB_KEY = "X_emb"


class EmbeddingFileError(DamagedInputError):
    """An embedding file is missing, unreadable or breaks the contract."""


def _fail(path, problem: str) -> EmbeddingFileError:
    return EmbeddingFileError(f"embedding file {path} {problem}; {rebuild_hint(path)}")


def _open(path):
    import h5py

    if not Path(path).exists():
        raise _fail(path, "does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise _fail(path, f"is not a readable h5ad file ({err})") from None


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def write(data, emb, uns: dict, path) -> None:
    """Write the file atomically: ``data``'s obs names and labels, ``emb``, ``uns``."""
    import anndata as ad
    import pandas as pd

    from scdrbench.common.io import write_h5ad

    out = ad.AnnData(
        obs=pd.DataFrame({"label": data.obs["label"].to_numpy()}, index=data.obs_names.copy()),
        obsm={EMB_KEY: np.asarray(emb, dtype=np.float32)},
    )
    out.obs["label"] = out.obs["label"].astype("category")
    out.uns.update(uns)
    write_h5ad(out, path)


def read_meta(path) -> dict:
    """The scalar ``uns`` entries and ``n_cells``, without the coordinates."""
    import h5py

    with _open(path) as f:
        try:
            uns = f["uns"]
            out = {k: _text(uns[k][()]) for k in uns if isinstance(uns[k], h5py.Dataset)}
            out["n_cells"] = int(f["obsm"][EMB_KEY].shape[0])
        except (KeyError, OSError) as err:
            raise _fail(path, f"breaks the contract ({type(err).__name__}: {err})") from None
    return out


def read_status(path) -> dict | None:
    """``status``, ``status_message``, ``budget``, ``retry_token``; None when the file is missing
    or unreadable (Snakemake then sees it as missing or re-runs it). Reads no array."""
    try:
        meta = read_meta(path)
    except EmbeddingFileError:
        return None
    return {
        "status": str(meta.get("status", "ok")),
        "status_message": str(meta.get("status_message", "ok")),
        "budget": str(meta.get("budget", "-/-")),
        "retry_token": str(meta.get("retry_token", "")),
    }


def read_coordinates(path, uns_keys=()) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(obs_names, coordinates, {key: uns value})``: what scoring needs, nothing else."""
    from scdrbench.common.io import read_h5ad_parts

    with _open(path) as f:
        try:
            names, coords, _, uns = read_h5ad_parts(f, EMB_KEY, uns_keys=uns_keys)
        except (KeyError, OSError) as err:
            raise _fail(path, f"breaks the contract ({type(err).__name__}: {err})") from None
    return names, coords, uns


def read(path):
    """The whole file as AnnData (figures), checked."""
    import anndata as ad

    _open(path).close()
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a damaged file
        raise _fail(path, f"is not a readable h5ad file ({type(err).__name__}: {err})") from None
    if EMB_KEY not in adata.obsm or "label" not in adata.obs:
        raise _fail(path, f"has no obsm['{EMB_KEY}'] or obs['label']")
    return adata


def earlier_repeats(path, dataset: str, method: str) -> tuple[list, list, list]:
    """Fit seconds, peaks and fit CPU seconds of earlier repeats of this same job.

    Snakemake's ``benchmark: repeat(...)`` runs the command again in the same job, over the
    previous repeat's output (outputs are only removed before the job starts), so each repeat's
    in-script numbers are carried forward and the timing table pairs them with Snakemake's row
    of the same repeat. Anything else (no file, another job's, unreadable): none.
    """
    if not os.path.exists(path):
        return [], [], []
    try:
        meta = read_meta(path)
    except EmbeddingFileError:
        return [], [], []
    if meta.get("dataset_id") != dataset or meta.get("method_id") != method:
        return [], [], []
    keys = ("fit_seconds_repeats", "peak_rss_mb_repeats", "fit_cpu_seconds_repeats")
    fits, peaks, cpus = (list(np.atleast_1d(meta.get(k, []))) for k in keys)
    return fits, peaks, cpus
