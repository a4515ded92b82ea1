"""Cell labels of a data set: a labels file read and matched to the cells, or a column cleaned.

Cells without a label (unlisted, empty, "unlabelled") keep the label ``unlabelled``, which every
label metric leaves out; below ``labels.min_labelled_fraction`` of the cells labelled, prepare
stops with one line naming the file, how many of its barcodes matched and an unmatched example
from each side. A labels file with a header or more than two columns needs ``labels.column``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from scdrbench.common.errors import ScdrbenchError
from scdrbench.metrics.base import UNLABELLED, is_missing_label

log = logging.getLogger("scdrbench.prepare")


HEADER_NAMES = frozenset({"", "barcode", "barcodes", "cell", "cells", "cell_id", "cell_barcode"})
HEADER_NAMES |= {"cellbarcode", "index", "obs_names", "id", "name"}


def strip_bytes_repr(values) -> tuple[pd.Index, int]:
    """Barcodes written as Python bytes reprs (``b'AAAC-1'``, from ``str()`` of an undecoded
    HDF5 string) as the strings they stand for; returns them and how many were changed."""
    text = pd.Series(np.asarray(values, dtype=object)).astype(str).str.strip()
    wrapped = text.str.fullmatch(r"b'[^']*'|b\"[^\"]*\"").to_numpy()
    if wrapped.any():
        text[wrapped] = text[wrapped].str[2:-1]
    return pd.Index(text.to_numpy()), int(wrapped.sum())


def clean_labels(values) -> np.ndarray:
    """Labels as stripped strings, a missing one (NaN, empty, "nan", "unlabelled") as
    ``UNLABELLED``: such cells are left out of every label metric."""
    out = np.asarray(values, dtype=object).copy()
    for i, value in enumerate(out):
        out[i] = UNLABELLED if is_missing_label(value) else str(value).strip()
    return out


def check_labelled_share(labels, *, what: str, key: str, min_fraction: float, detail: str = ""):
    """Stop (one line) when fewer than ``min_fraction`` of the cells have a label; log the share
    otherwise. ``what`` names the labels file or column, ``key`` the dataset's labels key."""
    n = len(labels)
    n_labelled = int(np.count_nonzero(labels != UNLABELLED))
    if n_labelled == 0 or n_labelled < min_fraction * n:
        raise ScdrbenchError(
            f"{what} labels {n_labelled} of {n} cells ({n_labelled / max(n, 1):.0%}; "
            f"{key}.min_labelled_fraction is {min_fraction:g}){detail}; fix the labels, or lower "
            f"{key}.min_labelled_fraction to score the labelled cells only"
        )
    if n_labelled < n:
        log.warning(
            "%s labels %d of %d cells; the other %d (not listed, or an empty or 'unlabelled' "
            "label) are left out of every label metric",
            what,
            n_labelled,
            n,
            n - n_labelled,
        )


def read_labels_file(
    path: str,
    barcodes,
    *,
    source_name: str,
    column: str | None = None,
    min_fraction: float = 0.5,
    key: str = "datasets.<id>.labels",
) -> pd.Series:
    """Labels from a CSV, indexed by the data set's ``barcodes``; ``UNLABELLED`` where missing.

    Without ``column``: two columns ``barcode,label``, no header. With ``column``: a header row,
    barcodes in the first column, the labels in the column named ``column``. A header or more
    than two columns without ``column`` is an error (which column holds the label is not
    guessed). Barcodes written as ``b'...'`` are read as the string inside (logged). Cells the
    file does not list, or lists with an empty label, are ``UNLABELLED`` (left out of every label
    metric); fewer than ``min_fraction`` labelled cells is an error naming how many of the
    file's barcodes matched and an unmatched example from each side.
    """
    # Longer than 80 lines: the docstring states every file format it accepts; the code is 66 lines
    # of checks, each with its own one-line message.
    from pathlib import Path

    where = f"{source_name}: labels file {path}"
    if not Path(path).exists():
        raise ScdrbenchError(f"{where} does not exist; fix {key}.file")
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as err:
        reason = " ".join(str(err).split())
        raise ScdrbenchError(f"{where} is not a CSV of barcodes and labels ({reason})") from None
    if raw.shape[1] < 2:
        raise ScdrbenchError(
            f"{where} has {raw.shape[1]} column; it needs the barcode in the first column and "
            "the label in a second one"
        )
    index = pd.Index(np.asarray(barcodes, dtype=object).astype(str))
    first = [str(v).strip() for v in raw.iloc[0]]
    if column is None:
        if raw.shape[1] > 2:
            raise ScdrbenchError(
                f"{where} has {raw.shape[1]} columns (first row: {','.join(first)}); set "
                f"{key}.column to the name of the label column (the file then needs a header row)"
            )
        rest = raw.iloc[1:]
        if first[0] not in index and (
            first[0].lower() in HEADER_NAMES
            or (rest[0].str.strip().isin(index).any() and first[1] not in set(rest[1]))
        ):
            raise ScdrbenchError(
                f"{where} starts with a header row ({','.join(first)}); set {key}.column to the "
                f"label column's name ({first[1]!r}), or remove the header row"
            )
        bcs, labels = raw[0], raw[1]
    else:
        if column not in first[1:]:
            raise ScdrbenchError(
                f"{where} has no column {column!r} in its header row (columns: "
                f"{', '.join(first[1:])}; the first, {first[0]!r}, holds the barcodes); fix "
                f"{key}.column"
            )
        bcs, labels = raw[0].iloc[1:], raw[first.index(column, 1)].iloc[1:]
    bcs, n_bytes = strip_bytes_repr(bcs)
    if n_bytes:
        log.info(
            "labels file %s: %d barcodes written as b'...' read as the string inside",
            path,
            n_bytes,
        )
    table = pd.Series(clean_labels(labels), index=bcs)
    table = table[~table.index.duplicated(keep="first")]
    found = table.reindex(index).fillna(UNLABELLED)
    matched = index.isin(table.index)
    file_only = table.index[~table.index.isin(index)]
    data_only = index[~matched]
    examples = [f"file {file_only[0]!r}"] if len(file_only) else []
    examples += [f"data {data_only[0]!r}"] if len(data_only) else []
    detail = f": {int(matched.sum())} of its {len(table)} barcodes match a cell"
    if examples:
        detail += (
            f"; unmatched, e.g. {' and '.join(examples)} (the first column must hold the data "
            "set's barcodes exactly)"
        )
    check_labelled_share(
        found.to_numpy(), what=where, key=key, min_fraction=min_fraction, detail=detail
    )
    return found


def attach_labels(adata, labels: dict, *, source_name: str, key: str = "datasets.<id>.labels"):
    """Copy the configured label column or file into ``obs['label']`` (or leave it for Leiden).

    Missing labels become ``UNLABELLED`` (left out of the label metrics); fewer than
    ``labels['min_labelled_fraction']`` labelled cells is an error."""
    kind = labels["from"]
    share = labels.get("min_labelled_fraction", 0.5)
    if kind == "file":
        found = read_labels_file(
            labels["file"],
            adata.obs_names,
            source_name=source_name,
            column=labels.get("column"),
            min_fraction=share,
            key=key,
        )
        adata.obs["label"] = pd.Categorical(found.to_numpy())
    if kind == "column":
        col = labels["column"]
        if col not in adata.obs.columns:
            raise ScdrbenchError(
                f"{source_name}: labels column {col!r} not found (columns: "
                f"{', '.join(map(str, adata.obs.columns)) or 'none'}); fix "
                f"{key}.column, or use labels: {{from: leiden}}"
            )
        values = clean_labels(adata.obs[col].to_numpy())
        check_labelled_share(
            values, what=f"{source_name}: labels column {col!r}", key=key, min_fraction=share
        )
        adata.obs["label"] = pd.Categorical(values)
    return adata
