"""CITE-seq pieces: CLR, cluster naming, and the real GEO ADT file (when ../shared is here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scdrbench.data.citeseq import clr, name_clusters
from tests.data_helpers import SHARED_DATA

ADT = SHARED_DATA / "cbmc" / "GSE100866_CBMC_8K_13AB_10X-ADT_umi.csv.gz"
SEURAT = SHARED_DATA / "cbmc" / "cbmc_seurat_cell_types.csv"


def test_clr_is_seurat_margin_2():
    x = np.array([[10, 0, 5], [1, 1, 1]])
    expected = np.log1p(x / np.exp(np.log1p(x).sum(axis=1, keepdims=True) / 3))
    np.testing.assert_allclose(clr(x), expected)


def test_name_clusters_by_markers():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, 3))
    clusters = np.repeat([0, 1, 2], 100)
    values[:100, 0] += 5
    values[100:200, 2] += 5
    names = name_clusters(values, clusters, ["CD3", "CD14", "CD19"], top=1)
    assert names[0] == "CD3+" and names[1] == "CD19+"


@pytest.mark.shared_data
@pytest.mark.skipif(not ADT.exists(), reason=f"real data not here: {ADT} (../shared/data absent)")
def test_real_geo_adt_file_parses():
    from scdrbench.data.readers import read_geo_csv

    adt = read_geo_csv(ADT)
    assert adt.shape == (8617, 13)
    assert list(adt.var_names[:3]) == ["CD3", "CD4", "CD8"]
    assert adt.obs_names.is_unique
    assert float(adt.X.sum()) > 0


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.skipif(
    not (ADT.exists() and SEURAT.exists()), reason="real data not here (../shared/data absent)"
)
def test_real_adt_labels_agree_with_seurat():
    """Protein labels vs the Seurat vignette's annotation (its mouse cells left out, as ours
    are dropped on the RNA side): adjusted Rand index well above chance."""
    from sklearn.metrics import adjusted_rand_score

    from scdrbench.data.citeseq import adt_labels
    from scdrbench.data.readers import read_geo_csv

    adt = read_geo_csv(ADT)
    ref = pd.read_csv(SEURAT, header=None, index_col=0)[1].reindex(adt.obs_names)
    human = (ref != "Mouse").to_numpy()
    labels, _ = adt_labels(adt.X.toarray()[human], list(adt.var_names), resolution=0.4)
    assert adjusted_rand_score(ref[human], labels) > 0.7
