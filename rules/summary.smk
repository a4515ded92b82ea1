# Stage 5: timing and metrics tables, the comparison figure.


rule timing_table:
    input:
        benchmarks=get_benchmark_files(),
        embeddings=get_embedding_outputs(),
        datasets=expand("results/data/{dataset}/pca.h5ad", dataset=DATASETS),
    output:
        tsv=report(
            "results/tables/timing.tsv",
            caption="report/timing.rst",
            category="Tables",
        ),
        md="results/tables/timing.md",
    log:
        "results/logs/summary/timing.log",
    params:
        root=ROOT,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "PYTHONPATH={params.root}:${{PYTHONPATH:-}} python -m scripts.summary timing "
        "--benchmarks {input.benchmarks:q} --embeddings {input.embeddings:q} "
        "--datasets {input.datasets:q} --tsv {output.tsv:q} --md {output.md:q} --log {log:q}"


rule metrics_table:
    input:
        get_metric_outputs(),
    output:
        tsv=report(
            "results/tables/metrics.tsv",
            caption="report/metrics.rst",
            category="Tables",
        ),
        md="results/tables/metrics.md",
    log:
        "results/logs/summary/metrics.log",
    params:
        root=ROOT,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "PYTHONPATH={params.root}:${{PYTHONPATH:-}} python -m scripts.summary metrics "
        "--metrics {input:q} --tsv {output.tsv:q} --md {output.md:q} --log {log:q}"


rule comparison_figure:
    input:
        embeddings=get_embedding_outputs(),
        timing="results/tables/timing.tsv",
        metrics="results/tables/metrics.tsv",
    output:
        png=report(
            "results/figures/comparison.png",
            caption="report/comparison.rst",
            category="Figures",
        ),
        pdf="results/figures/comparison.pdf",
    log:
        "results/logs/summary/comparison.log",
    params:
        root=ROOT,
    threads: 1
    resources:
        mem_mb=get_summary_mem_mb,
        runtime=30,
    conda:
        "../envs/python.yaml"
    shell:
        "PYTHONPATH={params.root}:${{PYTHONPATH:-}} python -m scripts.summary figure "
        "--embeddings {input.embeddings:q} --timing {input.timing:q} "
        "--metrics {input.metrics:q} --outputs {output.png:q} {output.pdf:q} --log {log:q}"
