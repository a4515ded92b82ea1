"""Readers of real-data formats and the prepare step: tiny format-faithful files, bad input."""

from __future__ import annotations

import gzip
import os

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError
from scdrbench.data import readers
from scdrbench.data.synthetic import SyntheticSpec, simulate_anndata, write_labels, write_tenx_h5
from scdrbench.stages.prepare import main as prepare_main
from scdrbench.stages.prepare import prepare
from tests.data_helpers import citeseq_pair, truncate, write_geo_csv, write_mtx_folder

SPEC = SyntheticSpec(n_cells=120, n_genes=80, n_types=3, seed=5)


def _entry(source, **kw):
    return {"source": source, "labels": {"from": "leiden", "resolution": 1.0}, **kw}


def _truth():
    return simulate_anndata(SPEC)


@pytest.mark.parametrize("layout", ["v2", "v3"])
def test_tenx_h5_layouts(tmp_path, layout):
    path = tmp_path / f"m_{layout}.h5"
    write_tenx_h5(SPEC, str(path), layout=layout)
    got = readers.read_tenx_h5(path)
    truth = _truth()
    assert got.shape == truth.shape
    assert (got.X != truth.X).nnz == 0
    assert list(got.obs_names) == list(truth.obs_names)
    assert list(got.var_names) == list(truth.var_names)
    assert got.X.dtype == np.float32 and sp.isspmatrix_csr(got.X)


def _edit_h5(path, key: str, edit) -> np.ndarray:
    """Rewrite the dataset ``key`` of an HDF5 file with ``edit`` applied to its values (in place)."""
    with h5py.File(path, "a") as f:
        values = f[key][:]
        edit(values)
        del f[key]
        f.create_dataset(key, data=values)
    return values


def test_tenx_h5_v3_keeps_gene_expression_only(tmp_path):
    path = tmp_path / "m.h5"
    write_tenx_h5(SPEC, str(path), layout="v3")
    _edit_h5(
        path, "matrix/features/feature_type", lambda t: t.__setitem__(slice(5), b"Antibody Capture")
    )
    assert readers.read_tenx_h5(path).n_vars == SPEC.n_genes - 5


@pytest.mark.parametrize("v3,gz", [(True, True), (False, False)])
def test_mtx_folder(tmp_path, v3, gz):
    truth = _truth()
    folder = write_mtx_folder(
        tmp_path / "mtx", truth.X, truth.obs_names, truth.var_names, v3=v3, gz=gz
    )
    got = readers.read_tenx_mtx(folder)
    assert (got.X != truth.X).nnz == 0
    assert list(got.obs_names) == list(truth.obs_names)
    assert list(got.var_names) == list(truth.var_names)


def test_geo_csv_roundtrip(tmp_path):
    truth = _truth()
    path = write_geo_csv(
        tmp_path / "x.csv.gz", truth.X.T.toarray().astype(int), truth.var_names, truth.obs_names
    )
    got = readers.read_geo_csv(path, chunksize=7)
    assert (got.X != truth.X).nnz == 0
    assert list(got.obs_names) == list(truth.obs_names)


def test_h5ad_prefers_counts_layer(tmp_path):
    truth = _truth()
    ad = truth.copy()
    ad.layers["counts"] = ad.X.copy()
    ad.X = ad.X * 0.5
    ad.write_h5ad(tmp_path / "a.h5ad")
    got = readers.read_h5ad_counts(tmp_path / "a.h5ad")
    assert (got.X != truth.X).nnz == 0


# --- bad input: one clear error naming the file, no partial output ---------------------------


def test_truncated_gzip(tmp_path):
    truth = _truth()
    path = write_geo_csv(
        tmp_path / "x.csv.gz", truth.X.T.toarray().astype(int), truth.var_names, truth.obs_names
    )
    truncate(path, 0.6)
    with pytest.raises(ScdrbenchError, match=r"x\.csv\.gz.*(damaged|truncated)"):
        readers.read_geo_csv(path)


@pytest.mark.parametrize("bad,match", [("1.5", "non-integer count 1.5"), ("-2", "negative")])
def test_csv_bad_counts(tmp_path, bad, match):
    path = tmp_path / "bad.csv"
    path.write_text(f",A,B\ng1,1,{bad}\ng2,0,3\n")
    with pytest.raises(ScdrbenchError, match=match):
        readers.read_geo_csv(path)


def test_csv_text_count(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(",A,B\ng1,1,x\ng2,0,3\n")
    with pytest.raises(ScdrbenchError, match=r"bad\.csv: non-integer count 'x'"):
        readers.read_geo_csv(path)


def test_csv_duplicated_barcodes(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(",A,B,A\ng1,1,2,3\n")
    with pytest.raises(ScdrbenchError, match="duplicated cell barcode.*'A'"):
        readers.read_geo_csv(path)


def test_h5_duplicated_barcodes(tmp_path):
    path = tmp_path / "m.h5"
    write_tenx_h5(SPEC, str(path), layout="v3")
    _edit_h5(path, "matrix/barcodes", lambda bc: bc.__setitem__(1, bc[0]))
    with pytest.raises(ScdrbenchError, match="duplicated cell barcode"):
        readers.read_tenx_h5(path)


def test_truncated_and_non_hdf5(tmp_path):
    path = tmp_path / "m.h5"
    write_tenx_h5(SPEC, str(path), layout="v2")
    truncate(path, 0.5)
    with pytest.raises(ScdrbenchError, match=r"m\.h5.*(HDF5|truncated)"):
        readers.read_tenx_h5(path)
    text = tmp_path / "t.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(ScdrbenchError, match=r"t\.h5: not a readable HDF5 file"):
        readers.read_tenx_h5(text)


def test_hdf5_without_expected_group(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_group("something").create_dataset("x", data=[1, 2])
    with pytest.raises(ScdrbenchError, match="not a Cell Ranger matrix.*groups found: something"):
        readers.read_tenx_h5(path)


def test_zero_count_cells_dropped_and_logged(tmp_path):
    path = tmp_path / "z.csv"
    path.write_text(",A,B,C\ng1,1,0,2\ng2,3,0,0\n")
    out = tmp_path / "counts.h5ad"
    log = tmp_path / "prepare.log"
    entry = _entry("geo_csv", path=str(path))
    prepare_main("z", entry, str(out), inputs={"file": str(path)}, log_path=str(log))
    # the dropped cell is not an error: the counts file is written without it, and said so
    written = ad.read_h5ad(out)
    assert list(written.obs_names) == ["A", "C"]
    assert written.X.toarray().tolist() == [[1, 3], [2, 0]]
    assert log.read_text().count("dropping 1 cells with zero counts") == 1


def test_labels_file(tmp_path):
    path = tmp_path / "m.h5"
    write_tenx_h5(SPEC, str(path), layout="v3")
    labels = tmp_path / "labels.csv"
    write_labels(SPEC, str(labels))
    entry = _entry("tenx_h5", path=str(path), labels={"from": "file", "file": str(labels)})
    adata = prepare("m", entry, {"file": str(path)})
    truth = _truth()
    assert (adata.obs["label"].astype(str) == truth.obs["cell_type"].astype(str)).all()


def test_labels_file_matching_nothing(tmp_path):
    path = tmp_path / "m.h5"
    write_tenx_h5(SPEC, str(path), layout="v3")
    labels = tmp_path / "labels.csv"
    labels.write_text("XXX-1,a\nYYY-1,b\n")
    entry = _entry("tenx_h5", path=str(path), labels={"from": "file", "file": str(labels)})
    out = tmp_path / "counts.h5ad"
    with pytest.raises(ScdrbenchError, match=r"labels\.csv labels 0 of \d+ cells .*0 of its 2"):
        prepare_main("m", entry, str(out), inputs={"file": str(path)})
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".counts")]


def test_bad_input_leaves_no_partial_output(tmp_path):
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(",A,B\ng1,1,-1\n")
    out = tmp_path / "counts.h5ad"
    with pytest.raises(ScdrbenchError):
        prepare_main("b", _entry("geo_csv", path=str(path)), str(out), inputs={"file": str(path)})
    assert os.listdir(tmp_path) == ["bad.csv.gz"]


# --- every source through prepare, with a label column or a labels file --------------------


@pytest.mark.parametrize("source", ["h5ad", "tenx_h5", "tenx_mtx", "geo_csv"])
def test_prepare_each_source(tmp_path, source):
    import anndata as ad

    truth = _truth()
    labels = tmp_path / "labels.csv"
    write_labels(SPEC, str(labels))
    if source == "h5ad":
        path = tmp_path / "a.h5ad"
        truth.write_h5ad(path)
        lab = {"from": "column", "column": "cell_type"}
    elif source == "tenx_h5":
        path = tmp_path / "a.h5"
        write_tenx_h5(SPEC, str(path), layout="v2")
        lab = {"from": "file", "file": str(labels)}
    elif source == "tenx_mtx":
        path = write_mtx_folder(tmp_path / "mtx", truth.X, truth.obs_names, truth.var_names)
        lab = {"from": "file", "file": str(labels)}
    else:
        path = write_geo_csv(
            tmp_path / "a.csv.gz", truth.X.T.toarray().astype(int), truth.var_names, truth.obs_names
        )
        lab = {"from": "file", "file": str(labels)}
    out = tmp_path / "counts.h5ad"
    entry = {"source": source, "path": str(path), "labels": lab}
    prepare_main("own", entry, str(out), inputs={"file": str(path)})
    got = ad.read_h5ad(out)
    assert got.X.dtype == np.float32 and sp.isspmatrix_csr(got.X)
    assert (got.X != truth.X).nnz == 0
    assert got.obs_names.is_unique and got.var_names.is_unique
    assert isinstance(got.obs["label"].dtype, pd.CategoricalDtype)
    assert (got.obs["label"].astype(str) == truth.obs["cell_type"].astype(str)).all()
    assert got.uns["provenance"]["source"] == source


def test_citeseq_species_and_protein_labels(tmp_path):
    from sklearn.metrics import adjusted_rand_score

    rna, adt, barcodes, is_mouse, ptype = citeseq_pair(tmp_path)
    entry = {
        "source": "geo_citeseq",
        "path": str(rna),
        "adt_path": str(adt),
        "labels": {"from": "adt_clusters", "resolution": 0.5},
    }
    adata = prepare("cbmc", entry, {"file": str(rna), "adt_file": str(adt)})
    human = np.asarray(barcodes)[~is_mouse]
    assert list(adata.obs_names) == list(human)
    assert list(adata.var_names) == [f"G{i}" for i in range(30)]  # prefix stripped, no ERCC
    assert adata.obsm["protein_counts"].shape == (len(human), 6)
    assert adjusted_rand_score(ptype[~is_mouse], adata.obs["label"]) > 0.9
    names = set(adata.obs["label"].astype(str))
    for marker in ("CD3+", "CD14+", "CD19+"):  # each population named by its antibody
        assert any(marker in n for n in names), names
    assert adata.uns["cbmc"]["mouse_threshold"] == 0.5
    assert adata.uns["cbmc"]["n_mouse_cells_dropped"] == int(is_mouse.sum())


def test_citeseq_mouse_threshold_and_seed_come_from_the_config(tmp_path):
    rna, adt, barcodes, is_mouse, _ = citeseq_pair(tmp_path)
    entry = {
        "source": "geo_citeseq",
        "path": str(rna),
        "adt_path": str(adt),
        "mouse_threshold": 0.99,  # mouse cells have ~93% mouse UMIs: all are kept
        "labels": {"from": "adt_clusters", "resolution": 0.5},
    }
    adata = prepare("cbmc", entry, {"file": str(rna), "adt_file": str(adt)}, seed=7)
    assert adata.n_obs == len(barcodes)
    assert adata.uns["cbmc"]["n_mouse_cells_dropped"] == 0
    assert adata.uns["cbmc"]["adt_leiden_seed"] == 7
    assert adata.uns["cbmc"]["mouse_threshold"] == 0.99


def test_no_cell_left_is_one_line_before_anything_is_written(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(",A,B\ng1,0,0\ng2,0,0\n")
    with pytest.raises(ScdrbenchError, match=r"dataset 'e': 0 cells left of 2 read after dropping"):
        prepare("e", _entry("geo_csv", path=str(path)), {"file": str(path)})


def test_damaged_local_file_advice_never_says_downloaded(tmp_path):
    path = tmp_path / "cut.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ScdrbenchError) as err:
        prepare("c", _entry("tenx_h5", path=str(path)), {"file": str(path)})
    assert "downloaded" not in str(err.value)
    assert "replace it with a complete copy (a local file" in str(err.value)


def _duplicated_gene_names_h5(tmp_path):
    """A Cell Ranger v3 HDF5 whose gene names repeat: gene 3 as gene 1, genes 5 and 6 as gene 2."""
    path = tmp_path / "dup.h5"
    write_tenx_h5(SPEC, str(path), layout="v3")

    def repeat(names):
        names[3] = names[1]
        names[5] = names[6] = names[2]

    names = _edit_h5(path, "matrix/features/name", repeat)
    return path, [n.decode() for n in names]


@pytest.mark.parametrize("route", ["memory", "stream"])
def test_duplicated_gene_names_renamed_with_one_warning(tmp_path, capfd, route):
    import logging
    import warnings

    from scdrbench.common.runtime import setup_logging
    from scdrbench.data.stream import write_counts_h5ad

    path, names = _duplicated_gene_names_h5(tmp_path)
    out, log = tmp_path / "counts.h5ad", tmp_path / "prepare.log"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if route == "memory":
            entry = _entry("tenx_h5", path=str(path))
            prepare_main("d", entry, str(out), inputs={"file": str(path)}, log_path=str(log))
        else:
            setup_logging(str(log))
            write_counts_h5ad(path, out, chunk_size=50)
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    # every gene kept, the repeats suffixed as anndata does; the same names on both routes
    var_names = list(ad.read_h5ad(out).var_names)
    expected = list(names)
    expected[3], expected[5], expected[6] = f"{names[1]}-1", f"{names[2]}-1", f"{names[2]}-2"
    assert var_names == expected
    line = (
        f"{path}: 3 gene name(s) repeat an earlier one (2 distinct names, first "
        f"{names[1]!r}); renamed {names[1]!r} -> '{names[1]}-1' and so on"
    )
    assert log.read_text().count(line) == 1
    err = [e for e in capfd.readouterr().err.splitlines() if "gene name" in e]
    assert len(err) == 1 and err[0].startswith(f"scdrbench warning: {line}")
    # anndata's own "Variable names are not unique" warning never fires: the names are fixed first
    assert [str(w.message) for w in caught if "not unique" in str(w.message)] == []
