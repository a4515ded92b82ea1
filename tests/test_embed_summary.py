"""The embedding runner (file contract, errors, memory guard) and the summary tables/figure."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.memory import MemoryGuardError, allocated_mb, check_memory
from scdrbench.stages import embed as embed_mod
from scdrbench.summary import figures as summary_figures
from scdrbench.summary import scaling, tables
from tests.conftest import make_blobs, write_pca_file

ENTRY = {
    "algorithm": "pca",
    "family": "python",
    "input": "significant_pcs",
    "params": {},
    "label": "PCA",
    "reference": "x",
    "control": True,
}


@pytest.fixture
def pca_file(tmp_path):
    X, y = make_blobs(n_per=40, dims=20)
    path = tmp_path / "data" / "blobs" / "pca.h5ad"
    return write_pca_file(path, X, y, n_significant_pcs=5, n_genes=123)


def test_embedding_file_contract(pca_file, tmp_path):
    out = tmp_path / "embed" / "blobs" / "pca.h5ad"
    embed_mod.main(pca_file, out, dataset="blobs", method="pca", entry=ENTRY, seed=3, threads=1)
    emb = ad.read_h5ad(out)
    data = ad.read_h5ad(pca_file)
    assert list(emb.obs_names) == list(data.obs_names)
    assert emb.obsm["X_emb"].shape == (data.n_obs, 2)
    np.testing.assert_array_equal(emb.obsm["X_emb"], data.obsm["X_pca"][:, :2])
    assert emb.X is None  # never the count matrix again
    for key in ("dataset_id", "method_id", "seed", "fit_seconds", "peak_rss_mb", "versions"):
        assert key in emb.uns
    assert emb.uns["seed"] == 3 and emb.uns["input_dims"] == 5
    assert emb.uns["peak_rss_mb"] > 10
    assert len(emb.uns["fit_seconds_repeats"]) == 1
    # A second run over the same output (Snakemake's benchmark repeat) keeps both repeats.
    embed_mod.main(pca_file, out, dataset="blobs", method="pca", entry=ENTRY, seed=3, threads=1)
    assert len(ad.read_h5ad(out).uns["fit_seconds_repeats"]) == 2


def test_missing_and_corrupt_input(tmp_path):
    out = tmp_path / "e.h5ad"
    with pytest.raises(ScdrbenchError, match="does not exist"):
        embed_mod.main(tmp_path / "nope.h5ad", out, dataset="d", method="m", entry=ENTRY)
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(ScdrbenchError, match="not a readable h5ad"):
        embed_mod.main(bad, out, dataset="d", method="m", entry=ENTRY)
    assert not out.exists()


def test_failed_run_keeps_previous_output(pca_file, tmp_path):
    out = tmp_path / "keep.h5ad"
    embed_mod.main(pca_file, out, dataset="blobs", method="pca", entry=ENTRY)
    before = out.read_bytes()
    bad = dict(ENTRY, params={"components": [1, 99]})
    with pytest.raises(ScdrbenchError):
        embed_mod.main(pca_file, out, dataset="blobs", method="pca", entry=bad)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_memory_guard(monkeypatch, pca_file, tmp_path):
    monkeypatch.delenv("SLURM_MEM_PER_NODE", raising=False)
    assert allocated_mb(None) is None
    check_memory(10_000, mem_mb=None)  # unknown allocation: no check
    with pytest.raises(MemoryGuardError, match="needs about 2000 MB but the job has 1000 MB"):
        check_memory(2000, mem_mb=1000)
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "100")
    assert allocated_mb(4000) == 100
    tsne = dict(ENTRY, algorithm="tsne", params={})
    with pytest.raises(MemoryGuardError, match="tsne"):
        embed_mod.main(pca_file, tmp_path / "t.h5ad", dataset="b", method="tsne", entry=tsne)


def test_memory_guard_under_a_budget_names_the_config_key_not_snakemakes_retries(
    monkeypatch, pca_file, tmp_path
):
    """Under a memory budget the stop is recorded as skipped and never resubmitted: the one
    line names the budget's key to raise, and the budget is what it checks, not SLURM's
    allocation."""
    from scdrbench.common.budget import Budget

    monkeypatch.setenv("SLURM_MEM_PER_NODE", "100000")
    tsne = dict(ENTRY, algorithm="tsne", params={})
    with pytest.raises(MemoryGuardError) as err:
        embed_mod.main(
            pca_file,
            tmp_path / "t.h5ad",
            dataset="b",
            method="tsne_p350",
            entry=tsne,
            mem_mb=1,
            budget=Budget(time_s=60, mem_mb=1),
        )
    msg = str(err.value)
    assert (
        "but the job has 1 MB (its memory budget, config key budget.methods.tsne_p350.mem)" in msg
    )
    assert msg.endswith(
        "Raise budget.methods.tsne_p350.mem in your config file on a node with that memory (docs/paper-run.md)"
    )
    assert "resubmits" not in msg and "\n" not in msg
    # without a budget: the allocation (here SLURM's) and Snakemake's retries, as before
    with pytest.raises(MemoryGuardError, match=r"has 100000 MB \(SLURM_MEM_PER_NODE.*resubmits"):
        check_memory(200_000, mem_mb=1, what="tsne")


def test_timing_table_pairs_repeats(pca_file, tmp_path):
    out = tmp_path / "embed" / "blobs" / "pca.h5ad"
    for _ in range(2):
        embed_mod.main(pca_file, out, dataset="blobs", method="pca", entry=ENTRY)
    bench = tmp_path / "benchmarks" / "embed" / "blobs" / "pca.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "1.5\t0:00:01\t120.1\t300\t100\t100\t0\t1\t50\t1.2\n"
        "1.7\t0:00:01\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n"
    )
    df = tables.timing_table([str(bench)], [str(out)], [str(pca_file)])
    assert len(df) == 2
    assert list(df["repeat"]) == [1, 2]
    assert df.loc[0, "s"] == 1.5 and df.loc[0, "max_rss_mb"] == pytest.approx(120.1)
    assert np.isnan(df.loc[1, "max_rss_mb"])
    assert df["n_cells"].tolist() == [120, 120] and df["n_genes"].tolist() == [123, 123]
    assert (df["fit_seconds"] >= 0).all() and df["fit_seconds"].iloc[0] != df["fit_seconds"].iloc[1]


def test_comparison_figure_writes_png_and_pdf(pca_file, tmp_path):
    out = tmp_path / "embed" / "blobs" / "pca.h5ad"
    embed_mod.main(pca_file, out, dataset="blobs", method="pca", entry=ENTRY)
    timing = pd.DataFrame(
        {"dataset": ["blobs"], "method": ["pca"], "s": [2.0], "fit_seconds": [0.1]}
    )
    metrics = pd.DataFrame(
        {"dataset": ["blobs"], "method": ["pca"], "metric": ["knn_accuracy"], "value": [0.97]}
    )
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    summary_figures.comparison_figure([str(out)], timing, metrics, [str(png), str(pdf)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    fig = summary_figures.draw_comparison([str(out)], timing, metrics)
    assert_panels_draw_points(fig, {"blobs/pca": 120}, tmp_path / "again.png")
    assert "kNN acc 0.97" in panel_axes(fig)["blobs/pca"].get_title()


def panel_axes(fig) -> dict:
    """The panels of a comparison or stability figure: ``{"dataset/method": axis}``."""
    return {ax.get_gid(): ax for ax in fig.axes if ax.get_gid()}


def panel_pixels(fig, ax, image: np.ndarray) -> np.ndarray:
    """The RGB pixels of the saved figure ``image`` inside the panel ``ax`` (frame left out),
    from the layout of the figure's last drawing."""
    x0, y0, x1, y1 = ax.get_window_extent().transformed(fig.transFigure.inverted()).extents
    h, w = image.shape[:2]
    return image[
        round((1 - y1) * h) + 3 : round((1 - y0) * h) - 3, round(x0 * w) + 3 : round(x1 * w) - 3, :3
    ]


def assert_panels_draw_points(fig, points: dict, png, failed: dict | None = None) -> None:
    """Every panel ``points`` names draws that many finite, rasterised points, and its region of
    the saved PNG is not blank; every panel ``failed`` names draws none and says its message."""
    import matplotlib.image

    failed = failed or {}
    panels = panel_axes(fig)
    assert set(panels) == set(points) | set(failed)
    summary_figures.save_figure(fig, [str(png)])
    image = matplotlib.image.imread(png)
    fig.canvas.draw()
    for gid, n in points.items():
        offsets = [np.asarray(c.get_offsets()) for c in panels[gid].collections]
        assert sum(len(o) for o in offsets) == n, gid
        assert all(np.isfinite(o).all() for o in offsets), gid
        assert all(c.get_rasterized() for c in panels[gid].collections), gid
        inked = (panel_pixels(fig, panels[gid], image).min(axis=2) < 0.8).mean()
        assert inked > 0.005, f"{gid}: blank panel ({inked:.4f} of its pixels drawn)"
    for gid, message in failed.items():
        assert not any(len(c.get_offsets()) for c in panels[gid].collections), gid
        texts = [" ".join(t.get_text().split()) for t in panels[gid].texts]
        assert message in texts, (gid, texts)


def write_embedding(path, xy, labels, label, **uns):
    """An embedding file as the embed stage writes it (coordinates, labels, uns)."""
    obs = pd.DataFrame(
        {"label": pd.Categorical(labels)}, index=[f"c{i}" for i in range(len(labels))]
    )
    emb = ad.AnnData(obs=obs, obsm={"X_emb": np.asarray(xy, dtype=np.float32)})
    emb.uns.update(method_label=label, **uns)
    path.parent.mkdir(parents=True, exist_ok=True)
    emb.write_h5ad(path)
    return str(path)


LONG_LABEL = "t-SNE, perplexity 350, k=350, lean affinities"
TIMEOUT = "timeout: ran past its time budget of 10 s (budget.stages.embed)"


def test_comparison_figure_of_18_methods_wraps_and_reads_at_laptop_width(tmp_path):
    """18 methods x 2 data sets: a block per data set, at most 6 panels a row, at most 2,400
    pixels wide at the saved dpi, every panel title whole, apart from its neighbours and at
    least 7 pt, every panel drawing its points (a failed method's panel says why instead)."""
    methods = [f"m{i:02d}" for i in range(18)]
    names = {m: f"Method {i}" for i, m in enumerate(methods)} | {"m03": LONG_LABEL}
    paths, rows, points, failed = [], [], {}, {}
    for ds, n_per in (("pbmc68k", 20), ("citeseq", 30)):
        X, y = make_blobs(n_per=n_per, n_classes=4, dims=2)
        for m in methods:
            uns = {}
            if (ds, m) == ("pbmc68k", "m05"):
                uns = {"status": "timeout", "status_message": TIMEOUT}
                failed[f"{ds}/{m}"] = TIMEOUT
            else:
                points[f"{ds}/{m}"] = len(y)
            xy = np.full_like(X, np.nan) if uns else X
            paths.append(
                write_embedding(tmp_path / ds / f"{m}.h5ad", xy, y.astype(str), "x", **uns)
            )
            rows.append(
                {
                    "dataset": ds,
                    "method": m,
                    "method_label": names[m],
                    "s": 61.0,
                    "fit_seconds": 2.5,
                }
            )
    fig = summary_figures.draw_comparison(paths, pd.DataFrame(rows), None)
    png = tmp_path / "comparison.png"
    assert_panels_draw_points(fig, points, png, failed)
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert width <= 2400 and width == round(fig.get_figwidth() * summary_figures.FIGURE_DPI)
    panels = panel_axes(fig)
    renderer = fig.canvas.get_renderer()
    box = {gid: ax.get_window_extent() for gid, ax in panels.items()}
    for ds in ("pbmc68k", "citeseq"):
        mine = [gid for gid in panels if gid.startswith(f"{ds}/")]
        rows_of = sorted({round(box[g].y0) for g in mine}, reverse=True)
        assert len(rows_of) == 3  # 18 panels wrapped into 3 rows of 6
        for y0 in rows_of:
            row = sorted((g for g in mine if round(box[g].y0) == y0), key=lambda g: box[g].x0)
            assert len(row) == 6
            titles = [panels[g].title.get_window_extent(renderer) for g in row]
            for left, right in zip(titles, titles[1:]):
                assert left.x1 < right.x0  # neighbouring titles do not overlap
    fig_box = fig.bbox
    for gid, ax in panels.items():
        title = ax.title
        assert title.get_fontsize() >= 7
        extent = title.get_window_extent(renderer)
        assert fig_box.x0 <= extent.x0 and extent.x1 <= fig_box.x1, gid
        assert title.get_text().startswith(names[gid.split("/")[1]].split(",")[0])
    assert " ".join(panels["pbmc68k/m03"].get_title().split()).startswith(LONG_LABEL)
    assert panels["pbmc68k/m00"].get_title().splitlines()[1] == "job 1.0 min, fit 2.5 s"
    # each data set's block has its title row
    block_titles = [sf.get_suptitle() for sf in fig.subfigs]
    assert block_titles == ["pbmc68k (80 cells)", "citeseq (120 cells)"]


def _timing_rows():
    rows = []
    for method, label, base in (("tsne", "t-SNE", 1.0), ("pca", "PCA", 0.01)):
        for ds, n in (("small", 700), ("big", 10_000)):
            for rep, jitter in ((1, 1.0), (2, 3.0)):
                fit = base * n / 700 * jitter
                rows.append(
                    {
                        "dataset": ds,
                        "method": method,
                        "method_label": label,
                        "repeat": rep,
                        "n_cells": n,
                        "s": fit + 5,
                        "max_rss_mb": 100.0,
                        "fit_seconds": fit,
                        "peak_rss_mb": 100 + n / 100,
                    }
                )
    return pd.DataFrame(rows)


def test_scaling_table_takes_medians_in_order_of_size():
    med = scaling.scaling_table(_timing_rows())
    tsne = med[med.method == "tsne"]
    assert tsne["n_cells"].tolist() == [700, 10_000]
    # median of 1x and 3x the base time
    assert tsne["fit_seconds"].tolist() == pytest.approx([2.0, 2.0 * 10_000 / 700])
    assert len(med) == 4


def test_scaling_figure_writes_png_and_pdf(tmp_path):
    png, pdf = tmp_path / "scaling.png", tmp_path / "scaling.pdf"
    scaling.scaling_figure(_timing_rows(), [str(png), str(pdf)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ScdrbenchError, match="timing table has no rows"):
        scaling.scaling_figure(_timing_rows().iloc[:0], [str(png)])


def test_legend_lists_the_largest_labels_when_there_are_many():
    rng = np.random.default_rng(0)
    labels = np.repeat([f"c{i:03d}" for i in range(100)], np.arange(1, 101))  # c099 largest
    emb = ad.AnnData(obs=pd.DataFrame({"label": pd.Categorical(rng.permutation(labels))}))
    cats = list(emb.obs["label"].cat.categories)
    handles = summary_figures._legend_handles(emb, cats, [(0, 0, 0)] * len(cats))
    names = [h.get_label() for h in handles]
    assert len(names) == summary_figures.MAX_LEGEND_LABELS + 1
    assert names[:-1] == [f"c{i:03d}" for i in range(70, 100)]
    assert names[-1] == "+ 70 smaller labels"
    few = summary_figures._legend_handles(
        emb[emb.obs["label"].isin(cats[:3])], cats[:3], [(0, 0, 0)] * 3
    )
    assert [h.get_label() for h in few] == cats[:3]


def test_many_leiden_clusters_get_distinct_colours_and_a_legend_in_number_order():
    """23 Leiden clusters (the 1.3M cells' count): no two share a colour, as seaborn's tab20
    cycled would make three pairs; the legend lists leiden_2 before leiden_10."""
    import seaborn as sns
    from matplotlib.colors import to_hex

    for n in (3, 12, 23, 60, 61, 200):
        assert len({to_hex(c) for c in summary_figures.label_palette(n)}) == n
    # up to 20 labels: the palettes the demo's figures have always had
    assert summary_figures.label_palette(12) == sns.color_palette("tab20", 12)
    cats = sorted(f"leiden_{i}" for i in range(23))  # the categories' order: leiden_0, _1, _10
    emb = ad.AnnData(obs=pd.DataFrame({"label": pd.Categorical(np.repeat(cats, 2))}))
    handles = summary_figures._legend_handles(emb, cats, summary_figures.label_palette(23))
    assert [h.get_label() for h in handles] == [f"leiden_{i}" for i in range(23)]
    # each handle keeps its label's colour: the legend's order is not the palette's
    k10 = cats.index("leiden_10")
    assert to_hex(handles[10].get_color()) == to_hex(summary_figures.label_palette(23)[k10])


def test_a_status_panel_keeps_a_config_key_whole_on_one_line():
    """The skipped panel's one line names the key to raise: wrapping must not cut it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    key = "budget.methods.parametric_umap.mem"  # longer than the panel's 28 characters
    summary_figures.status_panel(ax, f"skipped: memory guard: raise {key} in your config")
    lines = ax.texts[0].get_text().splitlines()
    plt.close(fig)
    assert key in lines and all(len(line) <= 28 for line in lines if line != key)
