"""Simulated antibodies for the paper run's stand-ins (src/scdrbench/data/proxy_adt.py): the proxy's
ADT counts follow its types, are deterministic and travel through the streamed prepare and
preprocess (the 1.3M route) to ae_citeseq; the CBMC-sized CITE-seq pair reads through the GEO
CITE-seq reader as the real files would."""

from __future__ import annotations

from dataclasses import replace

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scdrbench.data import proxy, proxy_adt
from scdrbench.data.synthetic import barcodes

SMALL = dict(n_cells=3000, n_genes=1500, lineage_pool=300, program_genes=40, chunk_size=700)


@pytest.fixture
def spec():
    return replace(proxy.spec_for(), **SMALL)


def test_counts_follow_the_types_and_are_deterministic(spec):
    counts = proxy_adt.proxy_adt(spec)
    assert counts.shape == (3000, proxy_adt.N_ANTIBODIES) and counts.dtype == np.int32
    assert counts.min() >= 0
    assert np.array_equal(counts, proxy_adt.proxy_adt(spec))
    assert not np.array_equal(counts, proxy_adt.proxy_adt(replace(spec, seed=1)))
    types = proxy.cell_types(spec)
    single = proxy.doublets(spec) < 0
    means = proxy_adt.type_means(spec)
    # each type's cells sit at its mean profile: the per-type median of log counts tracks it
    for t in np.unique(types[single])[:5]:
        cells = counts[single & (types == t)]
        if len(cells) < 30:
            continue
        top = np.argmax(means[t])
        assert np.argmax(np.median(cells, axis=0)) == top
    # a lineage shares its marker antibody: sister types are closer in protein than others
    lineage = proxy.type_lineage(spec)
    log_means = np.log(means)
    d = np.linalg.norm(log_means[:, None] - log_means[None], axis=2)
    same = lineage[:, None] == lineage[None]
    off = ~np.eye(len(lineage), dtype=bool)
    assert d[same & off].mean() < d[~same].mean()


def test_the_proxy_streams_with_its_antibodies_to_ae_citeseqs_input(spec, tmp_path, monkeypatch):
    """The 1.3M route (streamed prepare and preprocess) at 3,000 cells: a data set entry with
    ``adt_path`` gets ``obsm['protein_counts']`` in counts.h5ad and pca.h5ad, and RNA clusters
    beside its labels, as the in-memory route gives them."""
    import scdrbench.data.stream as stream
    from scdrbench.stages.check_config import check
    from scdrbench.stages.embed import protein_counts
    from scdrbench.stages.prepare import main as prepare

    h5, adt = tmp_path / "proxy.h5", tmp_path / "adt.h5ad"
    proxy.write_proxy(spec, str(h5), workers=1)
    proxy_adt.write_proxy_adt(spec, str(adt))
    monkeypatch.setattr(stream, "STREAM_MIN_CELLS", 1000)
    entry = {
        "source": "tenx_h5",
        "path": str(h5),
        "adt_path": str(adt),
        "labels": {"from": "leiden", "resolution": 1.0},
    }
    counts = tmp_path / "counts.h5ad"
    prepare("p", entry, str(counts), inputs={"file": str(h5), "adt_file": str(adt)})
    c = ad.read_h5ad(counts)
    assert c.n_obs == 3000 and list(c.obs_names[:3]) == list(barcodes(3000)[:3])
    assert np.array_equal(
        c.obsm["protein_counts"].to_numpy(), proxy_adt.proxy_adt(spec).astype(np.float32)
    )
    params = dict(check([])["preprocess"], n_hvg=300, n_pcs=20)
    pca_path = tmp_path / "pca.h5ad"
    stream.preprocess_streamed(counts, pca_path, params=params, labels=entry["labels"])
    pca = ad.read_h5ad(pca_path)
    assert pca.uns["preprocess_route"] == "streamed"
    assert protein_counts(pca).shape == (3000, proxy_adt.N_ANTIBODIES)
    assert list(pca.obs["rna_leiden"]) == list(pca.obs["label"])  # the labels are RNA Leiden


def test_streamed_prepare_drops_cells_without_protein_and_names_a_short_table(
    spec, tmp_path, monkeypatch
):
    import scdrbench.data.stream as stream
    from scdrbench.common.errors import ScdrbenchError
    from scdrbench.stages.prepare import main as prepare

    spec = replace(spec, n_cells=1400)
    h5 = tmp_path / "proxy.h5"
    proxy.write_proxy(spec, str(h5), workers=1)
    monkeypatch.setattr(stream, "STREAM_MIN_CELLS", 1000)
    counts = proxy_adt.proxy_adt(spec)
    names = proxy_adt.antibody_names()
    entry = {"source": "tenx_h5", "labels": {"from": "leiden", "resolution": 1.0}}
    for n_listed, ok in ((1300, True), (700, False)):
        adt = tmp_path / f"adt{n_listed}.h5ad"
        ad.AnnData(
            X=counts[:n_listed].astype(np.float32),
            obs=pd.DataFrame(index=barcodes(1400)[:n_listed]),
            var=pd.DataFrame(index=names),
        ).write_h5ad(adt)
        out = tmp_path / f"c{n_listed}.h5ad"
        inputs = {"file": str(h5), "adt_file": str(adt)}
        if ok:
            prepare("p", entry, str(out), inputs=inputs)
            assert ad.read_h5ad(out).n_obs == 1300
        else:
            with pytest.raises(ScdrbenchError, match=r"only 700 of 1400 RNA cells.*adt_min_match"):
                prepare("p", entry, str(out), inputs=inputs)
            assert not out.exists()


def test_cbmc_sized_pair_reads_as_geo_citeseq(tmp_path):
    """The GEO pair at a test size through the reader the real CBMC files take: the cells, 13
    antibodies, protein labels named by marker antibodies."""
    from scdrbench.data.citeseq import read_citeseq

    assert proxy_adt.CBMC_SPEC["n_cells"] == 8617 and proxy_adt.CBMC_SPEC["n_antibodies"] == 13
    rna, adt = tmp_path / "rna.csv.gz", tmp_path / "adt.csv.gz"
    out = proxy_adt.write_citeseq_pair(str(rna), str(adt), n_cells=900, n_genes=300)
    assert out["n_cells"] == 900
    adata = read_citeseq(str(rna), str(adt), resolution=0.4)
    assert adata.shape == (900, 300)
    assert adata.obsm["protein_counts"].shape == (900, 13)
    assert adata.obs["label"].nunique() >= 3
    assert all(s.endswith("+") or s == "negative" for s in adata.obs["label"].cat.categories)


def test_cli_writes_the_proxys_antibodies(tmp_path, capsys):
    out = tmp_path / "adt.h5ad"
    proxy_adt.main(["proxy", str(out), "--n-cells", "500", "--n-genes", "200"])
    adata = ad.read_h5ad(out)
    assert adata.shape == (500, 13)
    spec = proxy.spec_for(n_cells=500, n_genes=200)
    assert proxy_adt.adt_matches(spec, out)
    assert not proxy_adt.adt_matches(replace(spec, seed=3), out)
    assert not proxy_adt.adt_matches(spec, tmp_path / "missing.h5ad")
    assert list(adata.obs_names) == list(barcodes(500))
    assert '"n_cells": 500' in capsys.readouterr().out
