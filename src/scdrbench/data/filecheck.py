"""Whole-file checks of a downloaded or local input: it must be complete, as its name says.

A gzip stream read to its end (CRC and length), an HDF5 file that opens and, for a Cell Ranger
matrix, whose arrays agree with its shape, a CSV whose rows all have the header's number of
fields and whose last line is complete. Each failure is one line naming the file and the fix.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from scdrbench.common.errors import ScdrbenchError

BLOCK = 1 << 20


def check_opens(path: str | Path, *, name: str | None = None) -> None:
    """A ``.gz`` must decompress to its end; an ``.h5``/``.h5ad`` must open as HDF5."""
    path = Path(path)
    name = name or path.name
    if name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                while fh.read(BLOCK):
                    pass
        except (EOFError, OSError, zlib.error) as err:
            raise ScdrbenchError(
                f"{name}: not a complete gzip file ({type(err).__name__}: {err}); delete it and "
                "re-run, or replace it with a complete copy"
            ) from None
    elif name.endswith((".h5", ".h5ad", ".hdf5")):
        import h5py

        try:
            with h5py.File(path, "r"):
                pass
        except OSError as err:
            raise ScdrbenchError(
                f"{name}: not a readable HDF5 file ({err}); delete it and re-run, or replace "
                "it with a complete copy"
            ) from None


def check_csv(path: str | Path, *, name: str) -> None:
    """Every row of a CSV (plain or gzip) has the header's number of fields; the last line ends
    with a newline (a download cut mid-row is caught)."""
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        header = fh.readline()
        fields = header.count(",") + 1
        last, n = header, 1
        for line in fh:
            n += 1
            if line.count(",") + 1 != fields:
                raise ScdrbenchError(
                    f"{name}: row {n} has {line.count(',') + 1} fields, the header {fields}; the "
                    "file is cut or damaged: delete it and re-run, or replace it with a complete copy"
                )
            last = line
    if not last.endswith("\n"):
        raise ScdrbenchError(
            f"{name}: the last line is incomplete; the download was cut: delete it and re-run"
        )


def check_tenx(path: str | Path, *, name: str) -> None:
    """A Cell Ranger matrix's arrays must agree with its shape (``indptr`` of n_cells + 1,
    ``data`` and ``indices`` of ``indptr[-1]``): a file cut inside its arrays is caught."""
    import h5py

    with h5py.File(path, "r") as f:
        groups = [f[k] for k in f if hasattr(f[k], "keys") and "indptr" in f[k]]
        for g in groups:
            n_cells = int(g["shape"][1]) if "shape" in g else None
            indptr_len = g["indptr"].shape[0]
            try:
                nnz = int(g["indptr"][-1])
            except OSError as err:
                raise ScdrbenchError(
                    f"{name}: cannot read its indptr ({err}); the file is cut"
                ) from None
            if (n_cells is not None and indptr_len != n_cells + 1) or any(
                g[k].shape[0] != nnz for k in ("data", "indices") if k in g
            ):
                raise ScdrbenchError(
                    f"{name}: group '{g.name}' holds arrays that disagree with its shape; the "
                    "file is cut or damaged: delete it and re-run"
                )
