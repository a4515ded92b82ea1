"""The 1.3M-cell proxy generator (src/scdrbench/data/proxy.py), at a few thousand cells: the 10x v2
layout the readers take, distinct cells, brain-like type sizes with rare types, lineages that
group their types, the same file whatever the number of workers, and a record that keeps the
history of the same file's generations."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest

from scdrbench.data import proxy
from scdrbench.data.readers import read_tenx_h5

SMALL = dict(n_cells=3000, n_genes=1500, lineage_pool=300, program_genes=40, chunk_size=700)


def cli_args(tmp_path, name="p", workers=1):
    """The CLI's arguments for the earlier proxy (version 1) at the small size."""
    out = tmp_path / f"{name}.h5"
    args = [str(out), "--labels", str(tmp_path / f"{name}.csv"), "--workers", str(workers)]
    args += [
        "--n-cells",
        str(SMALL["n_cells"]),
        "--n-genes",
        str(SMALL["n_genes"]),
        "--version",
        "1",
    ]
    return out, args


@pytest.fixture
def small(monkeypatch):
    """The CLI's spec at the small size (pools and programmes shrunk with the gene count)."""
    real = proxy.ProxySpec

    def spec(**kw):
        return replace(real(**SMALL), **kw)

    monkeypatch.setattr(proxy, "ProxySpec", spec)
    monkeypatch.setattr(spec, "n_cells", SMALL["n_cells"], raising=False)
    monkeypatch.setattr(spec, "n_genes", SMALL["n_genes"], raising=False)
    return real(**SMALL)


def test_type_sizes_fall_geometrically_to_a_rare_type():
    spec = proxy.ProxySpec()
    p = proxy.type_proportions(spec)
    assert p.shape == (40,) and p.sum() == pytest.approx(1.0)
    assert np.all(np.diff(p) < 0)
    assert p[0] == pytest.approx(0.16, abs=0.01)  # the largest type
    assert p[-1] * spec.n_cells == pytest.approx(210, rel=0.1)  # about 200 of 1.3M cells
    assert len(set(proxy.type_lineage(spec))) == spec.n_lineages


def test_the_file_reads_as_10x_v2_with_distinct_cells_and_types(small, tmp_path):
    out, args = cli_args(tmp_path)
    proxy.main(args + ["--record", str(tmp_path / "rec.json")])
    adata = read_tenx_h5(out)
    assert adata.shape == (small.n_cells, small.n_genes)
    X = adata.X.tocsr()
    lib = np.asarray(X.sum(axis=1)).ravel()
    assert lib.min() >= 50 and 1800 < np.median(lib) < 3200
    # distinct cells: no row repeats another (the old benchmark file was 10 thinned copies)
    rows = {(tuple(X.indices[a:b]), tuple(X.data[a:b])) for a, b in zip(X.indptr, X.indptr[1:])}
    assert len(rows) == small.n_cells
    labels = pd.read_csv(tmp_path / "p.csv", header=None, names=["barcode", "label"])
    assert list(labels["barcode"]) == list(adata.obs_names)
    counts = labels["label"].value_counts()
    assert counts.iloc[0] / small.n_cells == pytest.approx(0.16, abs=0.03)
    assert len(counts) >= 25  # most of the 40 types even in 3,000 cells, rare ones missing
    # types of one lineage are closer to each other than to types of other lineages
    norm = np.log1p(X.multiply(1e4 / lib[:, None]).tocsr().toarray())
    big = counts.index[counts >= 30]
    means = {t: norm[(labels["label"] == t).to_numpy()].mean(axis=0) for t in big}
    lineage = {t: t.split("_")[0] for t in big}
    same, other = [], []
    for i, a in enumerate(big):
        for b in big[i + 1 :]:
            d = np.linalg.norm(means[a] - means[b])
            (same if lineage[a] == lineage[b] else other).append(d)
    assert same and other and np.mean(same) < np.mean(other)
    record = json.loads((tmp_path / "rec.json").read_text())
    assert record["sha256"] == proxy.sha256sum(str(out))
    assert record["nnz"] == X.nnz and record["spec"]["n_cells"] == small.n_cells


def test_same_file_whatever_the_workers_and_the_record_keeps_its_history(small, tmp_path):
    rec = tmp_path / "rec.json"
    one, args1 = cli_args(tmp_path, "one", workers=1)
    proxy.main(args1 + ["--record", str(rec)])
    two, args2 = cli_args(tmp_path, "two", workers=2)
    proxy.main(args2 + ["--record", str(rec)])
    assert proxy.sha256sum(str(one)) == proxy.sha256sum(str(two))
    history = json.loads(rec.read_text())["generations"]
    assert len(history) == 2 and all(g["seconds"] > 0 and "cores" in g["machine"] for g in history)
    # another file (another seed) starts a new history
    other, args3 = cli_args(tmp_path, "seed1")
    proxy.main(args3 + ["--seed", "1", "--record", str(rec)])
    assert proxy.sha256sum(str(other)) != proxy.sha256sum(str(one))
    assert len(json.loads(rec.read_text())["generations"]) == 1


# --- the calibrated proxy (versions 2 to 4), the comparison with the real cells, Leiden scoring -

#: The real subset's numbers the calibration aims at (benchmarks/results/proxy_vs_real.md: the
#: first 10,000 cells x first 1,000 genes of the 10x 1.3M mouse brain file).
REAL_MEDIAN_UMIS, REAL_ZERO_FRACTION = 137.0, 0.931


def test_earlier_proxy_stays_version_1_and_the_record_says_which():
    assert proxy.spec_for(1) == proxy.ProxySpec() and proxy.spec_for(1).version == 1
    assert proxy.spec_for().version == proxy.PROXY_VERSION == 4  # version 3 was not adopted
    assert proxy.spec_for(3).version == 3 and proxy.spec_for(3).bridge_rate > 0
    v4 = proxy.spec_for(4)
    assert v4.n_lineages == 3 and v4.bridge_rate > 0 and v4.n_activity == 1
    legacy = {k: v for k, v in asdict(proxy.spec_for(1)).items() if k in SPEC_V0_KEYS}
    assert proxy.spec_of_record({"spec": legacy}) == proxy.spec_for(1)
    # a version 2 record (written before version 3's fields existed) reads back as version 2
    v2_keys = SPEC_V0_KEYS | {"version", "library_sd", "base_sd", "type_library_sd", "chain"}
    v2_keys |= {"position", "doublet_rate", "n_channels", "channel_sd"}
    v2 = {k: v for k, v in asdict(proxy.spec_for(2)).items() if k in v2_keys}
    assert proxy.spec_of_record({"spec": v2}) == proxy.spec_for(2)
    with pytest.raises(ValueError, match="proxy version 5 unknown"):
        proxy.spec_for(5)


#: sha256 of the first 4,000 cells (CSR data, indices, indptr) of versions 1 to 3 at 50,000
#: cells in chunks of 2,000, computed with the generator as it was before the next version was
#: added (1 and 2 before version 3, 3 before version 4): the earlier versions' files must not
#: change when a later one is.
EARLIER_FIRST_CELLS = {
    1: "8dbbe8524899cb9df806da86a636efe49e6df62126c227d8557f2f86b00e54ec",
    2: "5a64e81e7948560c6171c4074bf177241e1132da113b3c4ff47bb87bdb0ae3d7",
    3: "3569496eaaac767811c617e197a9bcb80167ca6ce738d268521a7f9c7a74c794",
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_earlier_versions_draw_the_same_cells_as_before_a_later_version(version):
    import hashlib

    X = proxy.first_cells(proxy.spec_for(version, n_cells=50_000, chunk_size=2_000), 4_000)
    h = hashlib.sha256()
    for part in (X.data, X.indices, X.indptr):
        h.update(part.tobytes())
    assert h.hexdigest() == EARLIER_FIRST_CELLS[version]


#: the keys of a record written before the proxy had versions
SPEC_V0_KEYS = {"n_cells", "n_genes", "n_types", "n_lineages", "rarest_fraction"}
SPEC_V0_KEYS |= {"median_library_size", "lineage_weight", "type_weight", "lineage_pool"}
SPEC_V0_KEYS |= {"program_genes", "seed", "chunk_size"}


@pytest.mark.parametrize("version", [2, 3, 4])
def test_calibrated_proxy_is_deterministic_and_its_first_cells_are_the_files(version, tmp_path):
    spec = proxy.spec_for(version, n_cells=3_000, chunk_size=1_200)
    one = proxy.write_proxy(spec, str(tmp_path / "one.h5"), workers=1)
    two = proxy.write_proxy(spec, str(tmp_path / "two.h5"), workers=2)
    assert proxy.sha256sum(one["path"]) == proxy.sha256sum(two["path"])
    X = read_tenx_h5(one["path"]).X.tocsr()
    first = proxy.first_cells(spec, 1_500)
    assert first.shape == (1_500, spec.n_genes) and (X[:1_500] != first).nnz == 0
    v1 = proxy.write_proxy(
        proxy.spec_for(1, n_cells=3_000, chunk_size=1_200), str(tmp_path / "v1.h5")
    )
    assert proxy.sha256sum(v1["path"]) != proxy.sha256sum(one["path"])


def test_calibrated_proxy_is_near_the_real_cells_on_their_genes():
    """The first 1,000 genes of 2,000 cells: library sizes and zeros as the calibration set
    them against the real subset (within its tolerances: 20% and 2 points), deeper than the
    earlier proxy's."""
    spec = proxy.spec_for(proxy.PROXY_VERSION, n_cells=20_000, chunk_size=2_000)
    X = proxy.first_cells(spec, 2_000)[:, :1_000]
    lib = np.asarray(X.sum(axis=1)).ravel()
    assert np.median(lib) == pytest.approx(REAL_MEDIAN_UMIS, rel=0.2)
    assert 1 - X.nnz / np.prod(X.shape) == pytest.approx(REAL_ZERO_FRACTION, abs=0.02)
    earlier = proxy.first_cells(proxy.spec_for(1, n_cells=20_000, chunk_size=2_000), 2_000)
    assert np.median(np.asarray(earlier[:, :1_000].sum(axis=1))) < 0.7 * np.median(lib)


@pytest.mark.parametrize("version", [3, 4])
def test_bridges_join_neighbouring_lineages_and_are_never_doublets(version):
    """Version 3's and 4's cells between lineages: about ``bridge_rate`` of the singlets, each mixing in
    a cell of the next or previous lineage of the chain with a fraction up to ``bridge_max``."""
    spec = proxy.spec_for(version, n_cells=40_000)
    second, frac = proxy.bridges(spec)
    is_bridge = second >= 0
    singlet = proxy.doublets(spec) < 0
    assert not (is_bridge & ~singlet).any()
    assert is_bridge.sum() / singlet.sum() == pytest.approx(spec.bridge_rate, abs=0.01)
    lineage = proxy.type_lineage(spec)
    own = lineage[proxy.cell_types(spec)[is_bridge]]
    assert np.all(np.abs(lineage[second[is_bridge]] - own) == 1)
    assert frac[is_bridge].min() >= 0 and frac[is_bridge].max() <= spec.bridge_max
    assert frac[is_bridge].max() > 0.9 * spec.bridge_max and np.all(frac[~is_bridge] == 0)
    none, _ = proxy.bridges(proxy.spec_for(2, n_cells=40_000))
    assert np.all(none == -1)


def test_comparison_without_the_real_subset_says_which_file_and_where_it_comes_from(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    missing = tmp_path / "first_10k_cells_first_1000_genes.h5ad"
    out = tmp_path / "out" / "proxy_vs_real"
    cmd = [sys.executable, "benchmarks/proxy_vs_real.py", "--real", str(missing)]
    r = subprocess.run(cmd + ["--out", str(out)], cwd=root, capture_output=True, text=True)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(missing) in lines[0] and "is missing" in lines[0]
    assert "scanpy" in lines[0] and "10x Genomics 1.3M mouse brain" in lines[0]
    assert not out.parent.exists()


def test_leiden_beside_the_labels_is_kept_and_scored(tiny_counts, tmp_path):
    """``labels: {leiden_beside: true}`` (the ladder's proxy): preprocessing keeps the data set's
    labels and adds Leiden clusters of the PCs; scoring gives every label metric on both."""
    import anndata as ad

    from scdrbench.metrics import labelled, registry, score
    from scdrbench.stages.check_config import check
    from scdrbench.stages.preprocess import preprocess

    params = check([])["preprocess"]
    labels = {"from": "column", "column": "cell_type", "resolution": 1.0, "leiden_beside": True}
    pca = preprocess(tiny_counts, params=params, labels=labels, seed=0)
    assert list(pca.obs["label"]) == list(tiny_counts.obs["label"].astype(str))
    assert pca.obs["leiden"].nunique() >= 2 and str(pca.obs["leiden"].iloc[0]).startswith("leiden_")
    plain = preprocess(tiny_counts, params=params, labels={**labels, "leiden_beside": False})
    assert "leiden" not in plain.obs
    pca_path = tmp_path / "pca.h5ad"
    pca.write_h5ad(pca_path)
    emb = ad.AnnData(obs=pca.obs[["label"]].copy(), obsm={"X_emb": pca.obsm["X_pca"][:, :2]})
    emb.uns.update({"dataset_id": "d", "method_id": "pca", "seed": 0})
    emb_path = tmp_path / "emb.h5ad"
    emb.write_h5ad(emb_path)
    table = score.main(emb_path, pca_path, tmp_path / "m.tsv", dataset="d", method="pca", seed=0)
    values = table.set_index("metric")["value"]
    label_metrics = [m.name for m in registry.REGISTRY if m.needs_labels]
    for name in label_metrics:
        assert f"{name}_leiden" in values.index
    assert values["knn_accuracy_leiden"] != values["knn_accuracy"]  # two label sets, two scores
    assert "obs['leiden']" in table.set_index("metric").loc["knn_accuracy_leiden", "note"]
    # the same scores as the metric functions give against the clusters directly
    direct = labelled.knn_accuracy(emb.obsm["X_emb"], pca.obs["leiden"].to_numpy(), seed=0)
    assert values["knn_accuracy_leiden"] == pytest.approx(direct)


def test_ladder_keeps_the_earlier_proxys_rows_and_shows_both_scorings(monkeypatch, tmp_path):
    """The ladder's table on the calibrated proxy: rows of the earlier proxy stay (version 1,
    a table from before the column), this proxy's rows carry version 2 and the label metrics
    on the simulated types and on the Leiden clusters; the skips and power laws see one row per
    rung x method, the latest version's."""
    import ladder
    import ladder_report
    import ladder_setup

    monkeypatch.setattr(ladder_setup, "RESULTS", tmp_path)
    monkeypatch.setattr(ladder_setup, "SKIPS", tmp_path / "ladder_skips.json")
    legacy = "# machine: the old box\nmethod\tlabel\trung\tdataset\tstatus\tn_cells\tfit_s\tknn_accuracy\n"
    (tmp_path / "ladder.tsv").write_text(
        legacy + "tsne\tt-SNE\t10000\tproxy_1m_n10000\tok\t10000\t50.0\t0.99\n"
    )
    recorded = ladder_report.recorded_rows()
    assert list(recorded["proxy_version"]) == [1]
    ds = "proxy_1m_n10000"
    timing = pd.DataFrame(
        [
            {
                "method": "tsne", "method_label": "t-SNE", "dataset": ds, "n_cells": 10_000,
                "s": 60.0, "max_rss_mb": 500.0, "fit_seconds": 55.0, "fit_cpu_seconds": 80.0,
                "threads_used": 1.45, "threads": 2, "cpu_seconds": 82.0, "peak_rss_mb": 480.0,
                "status": "ok", "status_message": "ok",
            }
        ]
    )  # fmt: skip
    scores = {"knn_accuracy": 0.9, "knc": 0.5, "cpd": 0.4, "knn_accuracy_leiden": 0.8}
    scores["knc_leiden"] = 0.45
    metrics = pd.DataFrame(
        {"dataset": ds, "method": "tsne", "metric": list(scores), "value": list(scores.values())}
    )
    config = ladder.ladder_config()
    rows = ladder_report.ladder_rows(config, timing, metrics, recorded, version=2)
    tsne = rows[(rows["method"] == "tsne") & (rows["rung"] == 10_000)].set_index("proxy_version")
    assert sorted(tsne.index) == [1, 2]
    assert tsne.loc[1, "fit_s"] == 50.0 and tsne.loc[1, "knn_accuracy"] == 0.99
    assert pd.isna(tsne.loc[1, "knn_accuracy_leiden"])  # the earlier proxy: types only
    assert tsne.loc[2, "fit_s"] == 55.0 and tsne.loc[2, "knn_accuracy"] == 0.9
    assert tsne.loc[2, "knn_accuracy_leiden"] == 0.8 and tsne.loc[2, "knc_leiden"] == 0.45
    umap = rows[(rows["method"] == "umap") & (rows["rung"] == 10_000)]
    assert list(umap["proxy_version"]) == [2] and list(umap["status"]) == ["not run yet"]
    # written and read back as the committed table: both versions' rows, the latest one counts
    with open(tmp_path / "ladder.tsv", "w") as fh:
        fh.write("# header\n")
        rows.to_csv(fh, sep="\t", index=False)
    again = ladder_report.recorded_rows()
    assert sorted(again[again["method"] == "tsne"]["proxy_version"]) == [1, 2]
    merged = ladder_report.merged_timing(config, pd.DataFrame(), again)
    assert list(merged.loc[merged["method"] == "tsne", "fit_seconds"]) == [55.0]
    header = ladder_report.header({"spec": {"version": 2}, "sha256": "ab"}, "nothing else")
    assert any(line.startswith("proxy: version 2") for line in header)


def test_leiden_beside_the_labels_on_the_streamed_route(tiny_counts, tmp_path):
    """The ladder's 1.3M proxy is preprocessed in cell chunks: the clusters come beside the
    labels there too."""
    import anndata as ad
    import scipy.sparse as sp

    from scdrbench.data.stream import preprocess_streamed
    from scdrbench.stages.check_config import check

    counts = tiny_counts.copy()
    counts.X = sp.csr_matrix(counts.X)
    counts.write_h5ad(tmp_path / "counts.h5ad")
    params = dict(check([])["preprocess"], n_hvg=200, n_pcs=20)
    labels = {"from": "column", "column": "cell_type", "resolution": 1.0, "leiden_beside": True}
    preprocess_streamed(
        tmp_path / "counts.h5ad", tmp_path / "pca.h5ad", params=params, labels=labels
    )
    pca = ad.read_h5ad(tmp_path / "pca.h5ad")
    assert list(pca.obs["label"]) == list(counts.obs["label"].astype(str))
    assert pca.obs["leiden"].nunique() >= 2
