"""The 1.3M-cell proxy generator (scripts/data/proxy.py), at a few thousand cells: the 10x v2
layout the readers take, distinct cells, brain-like type sizes with rare types, lineages that
group their types, the same file whatever the number of workers, and a record that keeps the
history of the same file's generations."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from scripts.data import proxy
from scripts.data.readers import read_tenx_h5

SMALL = dict(n_cells=3000, n_genes=1500, lineage_pool=300, program_genes=40, chunk_size=700)


def cli_args(tmp_path, name="p", workers=1):
    out = tmp_path / f"{name}.h5"
    args = [str(out), "--labels", str(tmp_path / f"{name}.csv"), "--workers", str(workers)]
    args += ["--n-cells", str(SMALL["n_cells"]), "--n-genes", str(SMALL["n_genes"])]
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
