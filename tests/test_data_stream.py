"""The streamed route (cell chunks) equals scanpy's in-memory route."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError
from scdrbench.data.stream import preprocess_streamed, write_counts_h5ad
from scdrbench.data.synthetic import SyntheticSpec, write_h5ad, write_tenx_h5
from scdrbench.stages.preprocess import preprocess
from tests.data_helpers import SHARED_DATA

PARAMS = {
    "target_sum": 1e4,
    "n_hvg": 300,
    "n_pcs": 20,
    "significant_pcs": {"n_permutations": 2, "max_cells": 1000, "quantile": 0.95, "min_pcs": 2},
}
LABELS = {"from": "column", "resolution": 1.0}


def _compare(streamed, memory, n_pcs):
    """Same HVGs, same log-normalised matrix, PCs equal up to sign (|r| > 0.99 each)."""
    assert list(streamed.var_names) == list(memory.var_names)
    assert abs(streamed.X - memory.X).max() < 1e-5
    a, b = streamed.obsm["X_pca"], memory.obsm["X_pca"]
    assert a.shape == b.shape == (memory.n_obs, n_pcs)
    r = [abs(np.corrcoef(a[:, i], b[:, i])[0, 1]) for i in range(n_pcs)]
    assert min(r) > 0.99, np.round(r, 4)
    np.testing.assert_allclose(
        streamed.uns["pca_variance_ratio"], memory.uns["pca_variance_ratio"], rtol=1e-3
    )
    return r


@pytest.fixture(scope="module")
def synthetic_20k(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s20k")
    spec = SyntheticSpec(n_cells=20_000, n_genes=1_200, n_types=6, seed=2)
    src = tmp / "s20k.h5"
    write_tenx_h5(spec, str(src), layout="v2")
    counts = tmp / "counts.h5ad"
    info = write_counts_h5ad(src, counts, chunk_size=7_000)
    return tmp, counts, info


def test_streamed_counts_equal_reader(synthetic_20k):
    from scdrbench.data.readers import read_tenx_h5

    tmp, counts, info = synthetic_20k
    got = ad.read_h5ad(counts)
    ref = read_tenx_h5(tmp / "s20k.h5")
    ref = ref[np.asarray(ref.X.sum(axis=1)).ravel() > 0]
    assert info["n_cells"] == got.n_obs == ref.n_obs
    assert got.X.dtype == np.float32 and sp.isspmatrix_csr(got.X)
    assert (got.X != ref.X).nnz == 0
    assert list(got.obs_names) == list(ref.obs_names)
    # indptr is int64 on disk from the first chunk: appending past 2^31 non-zeros (1.3M brain
    # cells hold about 2.2 billion) would otherwise fail in anndata
    import h5py

    with h5py.File(counts, "r") as f:
        assert f["X"]["indptr"].dtype == np.int64


def test_streamed_preprocess_equals_scanpy_20k(synthetic_20k):
    """20,000 synthetic cells from a 10x file: HVGs identical, all 20 PCs |r| > 0.99."""
    tmp, counts, _ = synthetic_20k
    out = tmp / "pca_stream.h5ad"
    c = ad.read_h5ad(counts)
    c.obs["label"] = "x"
    write_h5ad_with_label = tmp / "counts_l.h5ad"
    c.write_h5ad(write_h5ad_with_label)
    preprocess_streamed(write_h5ad_with_label, out, params=PARAMS, labels=LABELS, chunk_size=6_000)
    streamed = ad.read_h5ad(out)
    memory = preprocess(c, params=PARAMS, labels=LABELS)
    _compare(streamed, memory, 20)
    assert streamed.uns["preprocess_route"] == "streamed"
    assert streamed.X.dtype == np.float32 and sp.isspmatrix_csr(streamed.X)
    assert streamed.obsm["X_pca"].dtype == np.float32
    for key in ("n_significant_pcs", "significant_pcs", "n_genes", "labels_from", "provenance"):
        assert key in streamed.uns
    assert list(streamed.obs_names) == list(memory.obs_names)


def test_streamed_h5ad_source_and_zero_cells(tmp_path, caplog):
    spec = SyntheticSpec(n_cells=500, n_genes=100, n_types=3, seed=1)
    path = tmp_path / "s.h5ad"
    write_h5ad(spec, str(path))
    with _h5(path) as f:
        data = f["X/data"]
        indptr = f["X/indptr"][:]
        data[indptr[3] : indptr[4]] = 0  # cell 3 has zero counts
    with caplog.at_level("WARNING"):
        info = write_counts_h5ad(path, tmp_path / "c.h5ad", chunk_size=128)
    assert info["n_zero_dropped"] == 1
    assert "dropped 1 cells with zero counts" in caplog.text


def _h5(path):
    import h5py

    return h5py.File(path, "a")


def test_streamed_rejects_bad_counts(tmp_path):
    import h5py

    spec = SyntheticSpec(n_cells=300, n_genes=50, n_types=2, seed=1)
    path = tmp_path / "m.h5"
    write_tenx_h5(spec, str(path), layout="v3")
    with h5py.File(path, "a") as f:
        f["matrix/data"][5] = -1
    out = tmp_path / "c.h5ad"
    with pytest.raises(ScdrbenchError, match="negative count"):
        write_counts_h5ad(path, out, chunk_size=100)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


def test_preprocess_main_dispatches_to_stream(tmp_path, monkeypatch):
    import scdrbench.data.stream as stream
    from scdrbench.stages.preprocess import main

    spec = SyntheticSpec(n_cells=400, n_genes=120, n_types=3, seed=4)
    counts = tmp_path / "c.h5ad"
    write_h5ad(spec, str(counts))
    monkeypatch.setattr(stream, "STREAM_MIN_CELLS", 100)
    params = dict(PARAMS, n_hvg=50, n_pcs=10)
    main(str(counts), str(tmp_path / "p.h5ad"), params=params, labels=LABELS, skip_labels=True)
    assert ad.read_h5ad(tmp_path / "p.h5ad").uns["preprocess_route"] == "streamed"


MB = SHARED_DATA / "mouse_brain_1m" / "first_10k_cells_first_1000_genes.h5ad"


@pytest.mark.shared_data
@pytest.mark.skipif(not MB.exists(), reason=f"real data not here: {MB} (../shared/data absent)")
def test_real_1m_slice_streams_like_scanpy(tmp_path):
    """The 10k-cell slice of the real 1.3M data through the streamed route (the one the whole
    file takes: prepare streams it into counts.h5ad, preprocess streams that) equals scanpy."""
    counts = tmp_path / "counts.h5ad"
    write_counts_h5ad(MB, counts, chunk_size=3_000)
    pca = tmp_path / "pca.h5ad"
    params = dict(PARAMS, n_hvg=500, n_pcs=30)
    preprocess_streamed(counts, pca, params=params, labels=LABELS, skip_labels=True)
    c = ad.read_h5ad(counts)
    c.obs["label"] = "x"
    memory = preprocess(c, params=params, labels=LABELS)
    r = _compare(ad.read_h5ad(pca), memory, 30)
    assert min(r[:20]) > 0.999
