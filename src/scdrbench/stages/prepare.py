"""Prepare a data set: read its source, attach labels, write ``results/data/{id}/counts.h5ad``.

The output contract: ``X`` raw counts (CSR float32, exact integers), ``obs_names`` unique cell
barcodes, ``var_names`` unique gene names, ``obs['label']`` (categorical) when the data set has
an annotation, and ``uns['provenance']`` (source, address or path, label origin). Data sets
labelled by Leiden clusters get their labels in the preprocess step instead.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.io import write_h5ad
from scdrbench.common.runtime import Stopwatch, peak_rss_mb, pin_threads, setup_logging
from scdrbench.data.labels import (
    attach_labels,
    check_labelled_share,
    clean_labels,
    read_labels_file,
)

log = logging.getLogger("scdrbench.prepare")


def read_pbmc68k():
    """scanpy's bundled ``pbmc68k_reduced`` with integer counts rebuilt from ``.raw``.

    ``.raw.X`` holds log1p of counts normalised to 10,000 per cell using the cell's total over
    all genes (``obs['n_counts']``), so ``counts = expm1(raw) * n_counts / 1e4``, rounded (every
    value lands within 0.1 of an integer in float32).
    """
    import anndata as ad
    import scanpy as sc

    src = sc.datasets.pbmc68k_reduced()
    raw = src.raw.X
    raw = raw.toarray() if sp.issparse(raw) else np.asarray(raw)
    counts = np.expm1(raw.astype(np.float64)) * src.obs["n_counts"].to_numpy()[:, None] / 1e4
    rounded = np.rint(counts)
    worst = float(np.abs(counts - rounded).max())
    if worst > 0.1:
        raise ScdrbenchError(
            f"pbmc68k: counts rebuilt from .raw are not integers (max deviation {worst:.3f}); "
            "the installed scanpy's pbmc68k_reduced differs from the one this was written for"
        )
    adata = ad.AnnData(
        X=sp.csr_matrix(rounded.astype(np.float32)),
        obs=src.obs.copy(),
        var=pd.DataFrame(index=src.raw.var_names.copy()),
    )
    return adata


def read_synthetic(params: dict):
    """The seeded simulator (``scdrbench.data.synthetic``) in memory."""
    from scdrbench.data.synthetic import SyntheticSpec, simulate_anndata

    return simulate_anndata(SyntheticSpec(**params))


#: First fields of a header row of a labels file (compared lower-cased).
def check_counts(adata, *, source_name: str):
    """Reject non-integer or negative counts; drop cells with zero counts (logged)."""
    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X)
    if values.size and (values.min() < 0 or not np.all(np.isfinite(values))):
        raise ScdrbenchError(f"{source_name}: counts must be finite and non-negative")
    if values.size and not np.all(np.equal(np.mod(values, 1), 0)):
        raise ScdrbenchError(
            f"{source_name}: the matrix holds non-integer values; scdrbench expects raw UMI "
            "counts (not normalised or log-transformed data)"
        )
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()][0]
        raise ScdrbenchError(f"{source_name}: duplicated cell barcode {dup!r}")
    from scdrbench.data.readers import unique_gene_names

    adata.var_names = unique_gene_names(adata.var_names, where=source_name)
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    empty = totals == 0
    if empty.any():
        log.warning("dropping %d cells with zero counts", int(empty.sum()))
        adata = adata[~empty].copy()
    return adata


def _input(inputs: dict, key: str, entry: dict) -> str:
    if key not in inputs:
        raise ScdrbenchError(
            f"source {entry['source']!r} needs the input {key!r} (from the dataset's "
            f"{'url or path' if key == 'file' else 'adt_url or adt_path'})"
        )
    return inputs[key]


def read_citeseq(entry: dict, inputs: dict, seed: int = 0):
    """GEO CITE-seq pair: human genes, mouse cells dropped, protein labels (``scdrbench.data.citeseq``)."""
    from scdrbench.data.citeseq import read_citeseq as read

    return read(
        _input(inputs, "file", entry),
        _input(inputs, "adt_file", entry),
        resolution=entry["labels"]["resolution"],
        mouse_threshold=entry.get("mouse_threshold", 0.5),
        seed=seed,
    )


def _reader(name: str):
    def read(entry: dict, inputs: dict, seed: int = 0):
        from scdrbench.data import readers

        return getattr(readers, name)(_input(inputs, "file", entry))

    return read


READERS = {
    "scanpy_pbmc68k": lambda entry, inputs, seed=0: read_pbmc68k(),
    "synthetic": lambda entry, inputs, seed=0: read_synthetic(entry["synthetic"]),
    "geo_citeseq": read_citeseq,
    "geo_csv": _reader("read_geo_csv"),
    "tenx_h5": _reader("read_tenx_h5"),
    "tenx_mtx": _reader("read_tenx_mtx"),
    "h5ad": _reader("read_h5ad_counts"),
}
# Sources that are streamed in cell chunks when large (scdrbench.data.stream).
STREAMABLE = ("tenx_h5", "h5ad")


def prepare(dataset: str, entry: dict, inputs: dict[str, str], *, seed: int = 0):
    """Read the data set described by registry ``entry``; returns the counts AnnData.

    ``seed`` (the config's) seeds what a reader draws at random: the ADT clustering of CITE-seq
    labels. The simulator has its own ``synthetic.seed``, so its data stay fixed across runs.
    """
    source = entry["source"]
    if source not in READERS:
        raise ScdrbenchError(
            f"dataset {dataset!r}: source {source!r} has no reader yet; "
            f"available: {', '.join(sorted(READERS))}"
        )
    adata = READERS[source](entry, inputs, seed)
    adata = add_protein(adata, entry, inputs, dataset=dataset, seed=seed)
    adata = attach_labels(
        adata, entry["labels"], source_name=f"dataset {dataset!r}", key=f"datasets.{dataset}.labels"
    )
    n_read = adata.n_obs
    adata = check_counts(adata, source_name=f"dataset {dataset!r}")
    if adata.n_obs == 0:
        raise ScdrbenchError(
            f"dataset {dataset!r}: 0 cells left of {n_read} read after dropping cells "
            "with zero counts (and, for CITE-seq, cells without protein or mouse cells); check "
            "the input file and the data set's filters"
        )
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    keep = ["label"] if "label" in adata.obs else []
    adata.obs = adata.obs[keep + [c for c in adata.obs.columns if c not in keep]]
    adata.uns["provenance"] = provenance(dataset, entry)
    return adata


def add_protein(adata, entry: dict, inputs: dict, *, dataset: str, seed: int = 0):
    """Protein (ADT) counts of any CITE-seq layout, checked, as ``obsm['protein_counts']``;
    protein labels when the data set's labels are ``adt_clusters``.

    From ``adt_path``/``adt_url`` (a GEO-style CSV or an h5ad), an h5ad's ``obsm[adt_obsm]``, a
    Cell Ranger v3 file's Antibody Capture features, or the simulator's. ``geo_citeseq`` (the
    CBMC pair) has already done all of it in its reader.
    """
    from scdrbench.data.citeseq import attach_protein, protein_labels

    source = entry["source"]
    if source == "geo_citeseq":
        return adata
    where = f"dataset {dataset!r}"
    protein = None
    if "adt_file" in inputs:
        from scdrbench.data.readers import read_adt_table

        protein = read_adt_table(inputs["adt_file"])
        where = f"{where}: ADT file {inputs['adt_file']}"
    elif entry.get("adt_obsm"):
        key = entry["adt_obsm"]
        if key not in adata.obsm:
            raise ScdrbenchError(
                f"{where}: no obsm[{key!r}] in the h5ad (it has "
                f"{', '.join(adata.obsm) or 'none'}); fix datasets.{dataset}.adt_obsm"
            )
        protein = adata.obsm.pop(key)
        where = f"{where}: obsm[{key!r}]"
    elif "protein_counts" in adata.obsm:
        protein = adata.obsm.pop("protein_counts")
    if protein is not None:
        if not isinstance(protein, pd.DataFrame):
            protein = pd.DataFrame(
                np.asarray(protein.toarray() if sp.issparse(protein) else protein),
                index=adata.obs_names,
                columns=[f"ADT{i + 1}" for i in range(protein.shape[1])],
            )
        adata = attach_protein(
            adata, protein, source=where, min_match=entry.get("adt_min_match", 0.9)
        )
    if entry["labels"]["from"] == "adt_clusters":
        adata = protein_labels(adata, resolution=entry["labels"]["resolution"], seed=seed)
    return adata


def provenance(dataset: str, entry: dict) -> dict:
    """What ``uns['provenance']`` records: source, address or path, label origin."""
    labels = entry["labels"]
    label_source = labels.get("column", "")
    if labels["from"] == "file":  # the file, and its label column when it has a header
        label_source = labels["file"] + (
            f" (column {labels['column']})" if "column" in labels else ""
        )
    return {
        "dataset_id": dataset,
        "source": entry["source"],
        # a local `path` wins over `url` (a copy staged on a cluster: nothing is downloaded)
        "address": entry.get("path", entry.get("url", "")),
        "copy_of": entry.get("url", "") if "path" in entry else "",
        "labels_from": entry["labels"]["from"],
        "labels_column": label_source,
    }


def should_stream(entry: dict, inputs: dict) -> bool:
    """A Cell Ranger HDF5 or h5ad with at least ``STREAM_MIN_CELLS`` cells is streamed."""
    from scdrbench.data.stream import STREAM_MIN_CELLS, n_cells_of

    if entry["source"] not in STREAMABLE or "file" not in inputs:
        return False
    return n_cells_of(inputs["file"]) >= STREAM_MIN_CELLS


def prepare_streamed(dataset: str, entry: dict, inputs: dict, output: str, seed: int = 0) -> dict:
    """Stream a large Cell Ranger HDF5 or h5ad into counts.h5ad without holding the matrix.

    Protein counts (``adt_path``/``adt_url``: cells x antibodies, small beside the RNA) are read
    whole, checked against the barcodes as in memory, and written as ``obsm['protein_counts']``.
    """
    from scdrbench.data.readers import open_h5
    from scdrbench.data.stream import open_cells, write_counts_h5ad

    name = f"dataset {dataset!r}"
    labels = entry["labels"]
    series = protein = None
    with open_cells(inputs["file"]) as (_, barcodes, _):
        pass
    if "adt_file" in inputs or labels["from"] == "adt_clusters":
        import anndata as ad

        cells = ad.AnnData(obs=pd.DataFrame(index=pd.Index(barcodes)))
        cells = add_protein(cells, entry, inputs, dataset=dataset, seed=seed)
        protein = cells.obsm["protein_counts"]
        if "label" in cells.obs:
            series = pd.Series(cells.obs["label"].astype(str).to_numpy(), index=cells.obs_names)
    if labels["from"] in ("file", "column"):
        key = f"datasets.{dataset}.labels"
        if labels["from"] == "file":
            series = read_labels_file(
                labels["file"],
                barcodes,
                source_name=name,
                column=labels.get("column"),
                min_fraction=labels.get("min_labelled_fraction", 0.5),
                key=key,
            )
        else:
            from anndata.io import read_elem

            with open_h5(inputs["file"]) as f:
                obs = read_elem(f["obs"]) if "obs" in f else pd.DataFrame()
            if labels["column"] not in obs:
                raise ScdrbenchError(
                    f"{name}: labels column {labels['column']!r} not found (columns: "
                    f"{', '.join(map(str, obs.columns)) or 'none'}); fix datasets.<id>.labels"
                )
            series = pd.Series(clean_labels(obs[labels["column"]].to_numpy()), index=obs.index)
            check_labelled_share(
                series.to_numpy(),
                what=f"{name}: labels column {labels['column']!r}",
                key=key,
                min_fraction=labels.get("min_labelled_fraction", 0.5),
            )
    return write_counts_h5ad(
        inputs["file"],
        output,
        labels=series,
        protein=protein,
        uns={"provenance": provenance(dataset, entry)},
    )


def main(
    dataset: str,
    entry: dict,
    output: str,
    *,
    inputs=None,
    threads: int = 1,
    seed: int = 0,
    log_path=None,
):
    """Prepare ``dataset`` and write ``output`` (counts.h5ad) atomically."""
    setup_logging(log_path)
    pin_threads(threads)
    inputs = inputs or {}
    from scdrbench.data.download import check_lock

    for path in inputs.values():
        check_lock(path)  # a download still the file that was verified
    if should_stream(entry, inputs):
        log.info("%s: large input, streamed in cell chunks", dataset)
        with Stopwatch() as sw:
            info = prepare_streamed(dataset, entry, inputs, output, seed=seed)
        log.info(
            "prepared %s: %d cells x %d genes in %.1f s; peak RSS %.0f MB",
            dataset,
            info["n_cells"],
            info["n_genes"],
            sw.seconds,
            peak_rss_mb(),
        )
        return
    with Stopwatch() as sw:
        adata = prepare(dataset, entry, inputs, seed=seed)
    log.info("prepared %s: %d cells x %d genes in %.1f s", dataset, *adata.shape, sw.seconds)
    write_h5ad(adata, output, compression="gzip")
    log.info("wrote %s; peak RSS %.0f MB", output, peak_rss_mb())


@cli_errors
def cli(argv=None) -> None:
    p = argparse.ArgumentParser(description="Prepare a data set into counts.h5ad")
    p.add_argument("--dataset", required=True)
    p.add_argument("--entry", required=True, help="the dataset's registry entry as JSON")
    p.add_argument("--inputs", default="{}", help="JSON {name: path} of downloaded files")
    p.add_argument("--output", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="the config's seed")
    p.add_argument("--log")
    a = p.parse_args(argv)
    main(
        a.dataset,
        json.loads(a.entry),
        a.output,
        inputs=json.loads(a.inputs),
        threads=a.threads,
        seed=a.seed,
        log_path=a.log,
    )


if __name__ == "__main__":
    cli()
