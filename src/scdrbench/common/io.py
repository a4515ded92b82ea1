"""Atomic file writing and checked reading of the AnnData files passed between steps."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scdrbench.common.errors import DamagedInputError, ScdrbenchError, environment_failure


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``final_path``; rename it into place only on success.

    A crash or an exception leaves ``final_path`` untouched (an older complete file stays) and
    removes the temporary file, so nothing half-written is ever seen under the final name. The
    file gets the permissions of an ordinary new file (0666 less the umask), not mkstemp's 0600,
    so results stay readable by the group on a shared cluster file system. An operating-system
    error of the machine (no space, permission, read-only, too many open files) becomes an
    :class:`~scdrbench.common.errors.EnvironmentFailure` naming ``final_path`` and the system's
    message, after the temporary file is gone (so the space it took is free for the log).
    """
    final = Path(final_path)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        failure = environment_failure(err, final) if isinstance(err, OSError) else None
        if failure is not None:
            raise failure from None
        raise


def check_writable(folder: str | os.PathLike = "results") -> None:
    """One line when ``folder`` (or, before it exists, the directory that will hold it) cannot
    be written: a read-only file system or mount, or permissions."""
    target = Path(folder)
    while not target.exists() and target != target.parent:
        target = target.parent
    if not os.access(target, os.W_OK | os.X_OK):
        why = "a read-only file system or mount" if _read_only_fs(target) else "no write permission"
        raise ScdrbenchError(
            f"results folder {Path(folder).resolve()} cannot be written ({why} at {target}); "
            "make it writable, or run in a writable copy with --directory <folder>"
        )


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def write_h5ad(adata, path: str | os.PathLike, *, compression: str | None = None) -> None:
    """Write an AnnData atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression=compression)


def sha256sum(path: str | os.PathLike, block: int = 1 << 24) -> str:
    """Hex SHA-256 of a file, read in blocks (downloads, the proxy's record, kept outputs)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def write_table(df, path: str | os.PathLike, *, sep: str = "\t") -> None:
    """Write a pandas DataFrame as TSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=sep, index=False)


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def rebuild_hint(path) -> str:
    """The command that makes a results file again: this run's own ``snakemake`` command (its
    profile, config files and working directory: :mod:`scdrbench.common.command`)."""
    import shlex

    from scdrbench.common import command

    return f"rebuild it with: {command.current()} --forcerun {shlex.quote(str(path))}"


def read_h5ad(path: str | os.PathLike, *, what: str = "file", backed: bool = False):
    """Read an h5ad with one line naming the file and the command that rebuilds it if it is
    missing or not an h5ad file."""
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise DamagedInputError(f"{what} {path} does not exist; {rebuild_hint(path)}")
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as err:  # h5py/anndata raise many types for a bad file
        raise DamagedInputError(
            f"{what} {path} is not a readable h5ad file ({type(err).__name__}: "
            f"{' '.join(str(err).split())}); {rebuild_hint(path)}"
        ) from None


def read_h5ad_parts(f, obsm_key: str, *, obs_columns=(), uns_keys=()):
    """From an open h5ad file (``h5py.File``) only ``(obs_names, obsm[obsm_key], {column: values
    or None when absent}, {uns key: scalar})``: never the count matrix. A missing group or
    ``obsm_key`` raises ``KeyError`` (the caller names the file)."""
    import numpy as np
    from anndata.io import read_elem

    obs = f["obs"]
    names = np.asarray(read_elem(obs[obs.attrs["_index"]]), dtype=object)
    coords = read_elem(f["obsm"][obsm_key])
    coords = np.asarray(coords.to_numpy() if hasattr(coords, "to_numpy") else coords)
    columns = {
        c: np.asarray(read_elem(obs[c]), dtype=object) if c in obs else None for c in obs_columns
    }
    uns = {}
    for key in uns_keys:
        if key in f["uns"]:
            value = read_elem(f["uns"][key])
            uns[key] = value.item() if hasattr(value, "item") else value
    return names, coords, columns, uns


def read_table(path, *, what: str = "table", columns=(), rebuild=None, **read_csv_args):
    """Read a tab-separated results file; a missing, unreadable or cut one (a needed column
    absent) is one line naming it and the command that rebuilds ``rebuild`` (default: it)."""
    import pandas as pd

    path = Path(path)
    hint = rebuild_hint(rebuild or path)
    if not path.exists():
        raise ScdrbenchError(f"{what} {path} does not exist; {hint}")
    try:
        df = pd.read_csv(path, sep="\t", **read_csv_args)
    except (UnicodeDecodeError, ValueError) as err:  # pandas' parser errors are ValueErrors
        reason = " ".join(str(err).split())[:200]
        raise ScdrbenchError(
            f"{what} {path} is not a readable table ({type(err).__name__}: {reason}); {hint}"
        ) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ScdrbenchError(
            f"{what} {path} lacks the column(s) {', '.join(missing)} (cut or damaged); {hint}"
        )
    return df
