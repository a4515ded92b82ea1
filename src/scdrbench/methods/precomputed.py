"""Score an embedding made elsewhere: coordinates read from a file, matched to the cells.

``path`` is an ``.h5ad`` file (its ``obs_names`` the barcodes, the coordinates in
``obsm[obsm_key]``) or a CSV/TSV (first column the barcode, then the coordinates; a header row
is recognised by a non-numeric second field). Every cell of the data set must be in the file
(extra cells are ignored, and counted in the log), with finite coordinates in at least two
columns; the first two are scored. The workflow runs it through its own rule,
``embed_precomputed`` (family ``precomputed``): the file is that job's input, so replacing it
re-scores it, and no embedding method runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods._params import string

log = logging.getLogger("scdrbench.methods.precomputed")

PARAMS = {
    "path": string(description="the coordinates: an .h5ad (obsm) or a CSV/TSV of barcode,x,y"),
    "obsm_key": string("X_emb", "h5ad only: the obsm key holding the coordinates"),
}
#: parameters without which the method cannot run (the config schema requires them)
REQUIRED_PARAMS = ("path",)
BACKEND_MODULES = ()
VERSIONED = ()
#: the runner passes the data set's barcodes (``obs_names``) to ``embed``
NEEDS_OBS_NAMES = True


def _read(path: Path, obsm_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(barcodes, coordinates)`` of the file."""
    if path.suffix == ".h5ad":
        import anndata as ad

        try:
            adata = ad.read_h5ad(path, backed="r")
        except Exception as err:  # h5py/anndata raise many types for a bad file
            raise ScdrbenchError(
                f"precomputed embedding {path}: not a readable h5ad ({err})"
            ) from None
        if obsm_key not in adata.obsm:
            raise ScdrbenchError(
                f"precomputed embedding {path}: no obsm['{obsm_key}'] (it has "
                f"{', '.join(adata.obsm) or 'none'}); set params.obsm_key"
            )
        return np.asarray(adata.obs_names, dtype=object), np.asarray(adata.obsm[obsm_key])
    import pandas as pd

    sep = "\t" if path.suffix in (".tsv", ".txt") or path.name.endswith(".tsv.gz") else ","
    try:
        first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str)
        header = 0 if first.shape[1] > 1 and not _numeric(first.iloc[0, 1]) else None
        df = pd.read_csv(path, sep=sep, header=header, index_col=0)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ScdrbenchError(
            f"precomputed embedding {path}: not a readable table ({err})"
        ) from None
    try:
        coords = df.to_numpy(dtype=np.float64)
    except ValueError:
        raise ScdrbenchError(
            f"precomputed embedding {path}: the coordinate columns are not all numbers; give "
            "barcode,x,y rows"
        ) from None
    return np.asarray(df.index.astype(str), dtype=object), coords


def _numeric(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    obs_names=None,
    path: str | None = None,
    obsm_key: str = "X_emb",
) -> np.ndarray:
    """The file's first two coordinates, in the order of the data set's cells (``obs_names``)."""
    import pandas as pd

    if path is None:
        raise ScdrbenchError("precomputed: params.path is required (the coordinates file)")
    p = Path(path)
    if not p.exists():
        raise ScdrbenchError(f"precomputed embedding {p} does not exist; check params.path")
    barcodes, coords = _read(p, obsm_key)
    if coords.ndim != 2 or coords.shape[1] < 2:
        width = coords.shape[1] if coords.ndim == 2 else 1
        raise ScdrbenchError(
            f"precomputed embedding {p}: {width} coordinate column(s); at least 2 are needed"
        )
    if pd.Index(barcodes).has_duplicates:
        dup = pd.Index(barcodes)[pd.Index(barcodes).duplicated()][0]
        raise ScdrbenchError(f"precomputed embedding {p}: barcode {dup!r} is listed twice")
    names = np.asarray(obs_names if obs_names is not None else [], dtype=object)
    pos = pd.Index(barcodes).get_indexer(names)
    missing = int(np.count_nonzero(pos < 0))
    if missing:
        example = names[pos < 0][0]
        raise ScdrbenchError(
            f"precomputed embedding {p}: {missing} of the data set's {len(names)} cells are not "
            f"in it (e.g. {example!r}; {len(names) - missing} match); it must hold every cell"
        )
    out = np.asarray(coords[pos, :2], dtype=np.float64)
    bad = int(np.count_nonzero(~np.isfinite(out).all(axis=1)))
    if bad:
        raise ScdrbenchError(
            f"precomputed embedding {p}: {bad} cells have NaN or infinite coordinates"
        )
    extra = len(barcodes) - len(names)
    if extra:
        log.info("precomputed embedding %s: %d cells not in the data set ignored", p, extra)
    if info is not None:
        info["source"] = str(p)
    return out.astype(np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """The file's coordinates and barcodes."""
    return n_cells * 200 / 1e6 + 100
