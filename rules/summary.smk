# Stage 5: timing, metrics and ranking tables; the comparison figure, the scaling figure, the
# metrics heatmap and one panel per embedding. Every product is a report() item with its
# caption in report/.


rule timing_table:
    input:
        benchmarks=get_benchmark_files(),
        embeddings=get_embedding_outputs(),
        datasets=expand("results/data/{dataset}/pca.h5ad", dataset=DATASETS),
    output:
        tsv=update(
            report(
                "results/tables/timing.tsv",
                caption="report/timing.rst",
                category="Tables",
            )
        ),
        md=update("results/tables/timing.md"),
    log:
        "results/logs/summary/timing.log",
    benchmark:
        "results/benchmarks/summary/timing.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/tables/timing.tsv"),
        labels=get_method_labels_json(),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} timing "
        "--benchmarks {input.benchmarks:q} --embeddings {input.embeddings:q} "
        "--datasets {input.datasets:q} --tsv {output.tsv:q} --md {output.md:q} --log {log:q} "
        "--labels {params.labels:q}"


rule metrics_table:
    input:
        metrics=get_score_outputs(),
        embeddings=get_embedding_outputs(),
    output:
        tsv=update(
            report(
                "results/tables/metrics.tsv",
                caption="report/metrics.rst",
                category="Tables",
            )
        ),
        md=update("results/tables/metrics.md"),
        html=update(
            report(
                "results/tables/metrics.html",
                caption="report/metrics_md.rst",
                category="Tables",
            )
        ),
    log:
        "results/logs/summary/metrics.log",
    benchmark:
        "results/benchmarks/summary/metrics.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/tables/metrics.tsv"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} metrics "
        "--metrics {input.metrics:q} --embeddings {input.embeddings:q} --tsv {output.tsv:q} "
        "--md {output.md:q} --html {output.html:q} --log {log:q}"


rule comparison_figure:
    input:
        embeddings=get_embedding_outputs(),
        timing="results/tables/timing.tsv",
        metrics="results/tables/metrics.tsv",
    output:
        png=update(
            report(
                "results/figures/comparison.png",
                caption="report/comparison.rst",
                category="Figures",
            )
        ),
        pdf=update("results/figures/comparison.pdf"),
    log:
        "results/logs/summary/comparison.log",
    benchmark:
        "results/benchmarks/summary/comparison.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/figures/comparison.png"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_summary_mem_mb,
        runtime=30,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} figure "
        "--embeddings {input.embeddings:q} --timing {input.timing:q} "
        "--metrics {input.metrics:q} --outputs {output.png:q} {output.pdf:q} --log {log:q}"


rule scaling_figure:
    input:
        timing="results/tables/timing.tsv",
    output:
        png=update(
            report(
                "results/figures/scaling.png",
                caption="report/scaling.rst",
                category="Figures",
            )
        ),
        pdf=update("results/figures/scaling.pdf"),
    log:
        "results/logs/summary/scaling.log",
    benchmark:
        "results/benchmarks/summary/scaling.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/figures/scaling.png"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} scaling "
        "--timing {input.timing:q} --outputs {output.png:q} {output.pdf:q} --log {log:q}"


rule ranking_table:
    input:
        metrics="results/tables/metrics.tsv",
        timing="results/tables/timing.tsv",
    output:
        tsv=update(
            report(
                "results/tables/ranking.tsv",
                caption="report/ranking.rst",
                category="Tables",
            )
        ),
        md=update("results/tables/ranking.md"),
        html=update(
            report(
                "results/tables/ranking.html",
                caption="report/ranking.rst",
                category="Tables",
            )
        ),
    log:
        "results/logs/summary/ranking.log",
    benchmark:
        "results/benchmarks/summary/ranking.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/tables/ranking.tsv"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} ranking "
        "--metrics {input.metrics:q} --timing {input.timing:q} "
        "--tsv {output.tsv:q} --md {output.md:q} --html {output.html:q} --log {log:q}"


rule metrics_heatmap:
    input:
        metrics="results/tables/metrics.tsv",
        ranking="results/tables/ranking.tsv",
        timing="results/tables/timing.tsv",
    output:
        png=update(
            report(
                "results/figures/metrics_heatmap.png",
                caption="report/heatmap.rst",
                category="Figures",
            )
        ),
        pdf=update("results/figures/metrics_heatmap.pdf"),
    log:
        "results/logs/summary/heatmap.log",
    benchmark:
        "results/benchmarks/summary/heatmap.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/figures/metrics_heatmap.png"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} heatmap "
        "--metrics {input.metrics:q} --ranking {input.ranking:q} --timing {input.timing:q} "
        "--outputs {output.png:q} {output.pdf:q} --log {log:q}"


rule embedding_panels:
    input:
        embeddings=get_embedding_outputs(),
        metrics="results/tables/metrics.tsv",
    output:
        get_embedding_panel_reports(),
    log:
        "results/logs/summary/panels.log",
    benchmark:
        "results/benchmarks/summary/panels.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after(get_embedding_panels()[0]),
        labels=get_method_labels_json(),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_summary_mem_mb,
        runtime=30,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} panels "
        "--embeddings {input.embeddings:q} --metrics {input.metrics:q} "
        "--outputs {output:q} --log {log:q} --labels {params.labels:q}"


rule findings:
    input:
        metrics="results/tables/metrics.tsv",
        timing="results/tables/timing.tsv",
    output:
        update(
            report(
                "results/tables/findings.md",
                caption="report/findings.rst",
                category="Tables",
            )
        ),
    log:
        "results/logs/summary/findings.log",
    benchmark:
        "results/benchmarks/summary/findings.tsv"
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/tables/findings.md"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} findings --metrics {input.metrics:q} --timing {input.timing:q} "
        "--md {output:q} --log {log:q}"
