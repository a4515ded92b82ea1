# Target lists: what `all` and the named partial targets build, and the per-job files the
# summary jobs read, each in the order of the grid (rules/common.smk: PAIRS).


def _pairs(pattern, pairs=None):
    """``pattern`` filled for every job of the grid (or of ``pairs``), data set by data set."""
    return [pattern.format(dataset=d, method=m) for d, m in (PAIRS if pairs is None else pairs)]


def get_final_outputs():
    """Everything the default target builds."""
    return get_summary_outputs()


def get_embedding_outputs():
    """All embedding files of the grid."""
    return _pairs("results/embed/{dataset}/{method}.h5ad")


def get_score_outputs():
    """All scoring jobs' metric tables (results/metrics/{dataset}/{method}.tsv) of the grid."""
    return _pairs("results/metrics/{dataset}/{method}.tsv")


def get_summary_outputs():
    """Tables and figures."""
    return [
        "results/tables/timing.tsv",
        "results/tables/timing.md",
        "results/tables/metrics.tsv",
        "results/tables/metrics.md",
        "results/tables/metrics.html",
        "results/tables/ranking.tsv",
        "results/tables/ranking.md",
        "results/tables/ranking.html",
        "results/tables/findings.md",
        "results/figures/comparison.png",
        "results/figures/comparison.pdf",
        "results/figures/scaling.png",
        "results/figures/scaling.pdf",
        "results/figures/metrics_heatmap.png",
        "results/figures/metrics_heatmap.pdf",
        *get_embedding_panels(),
        *(
            [
                "results/tables/stability.tsv",
                "results/tables/stability.md",
                "results/figures/stability.png",
                "results/figures/stability.pdf",
            ]
            if STABILITY_DATASETS
            else []
        ),
    ]


def get_stability_outputs(ext):
    """The stability stage's per-job files (none when it is off)."""
    pairs = [
        (d, m)
        for d, m in PAIRS
        if d in STABILITY_DATASETS and config["methods"][m]["family"] != "precomputed"
    ]
    return _pairs(f"results/stability/{{dataset}}/{{method}}.{ext}", pairs)


def get_embedding_panels():
    """One PNG per embedding, in the order of get_embedding_outputs()."""
    return _pairs("results/figures/embeddings/{dataset}/{method}.png")


def get_embedding_panel_reports():
    """The same, as report items: category Embeddings, a subcategory per dataset; flagged
    update() like every summary product (a failed re-run keeps the previous panels)."""
    from snakemake.io import report as report_item  # "report" opens a directive at line start

    return [
        update(
            report_item(
                path,
                caption="report/embedding.rst",
                category="Embeddings",
                subcategory=dataset,
                labels={"dataset": dataset, "method": method},
            )
        )
        for path, (dataset, method) in zip(get_embedding_panels(), PAIRS)
    ]


def get_benchmark_files():
    """The explicit list of embedding benchmark files (no directory walk)."""
    return _pairs("results/benchmarks/embed/{dataset}/{method}.tsv")
