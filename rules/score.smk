# Stage 4 (score): score every embedding against its data set's 50 PCs and labels. The stage is
# "score" in its rule, logs, benchmarks and the threads and budget keys; its files keep the name
# of what they hold, one row per metric of the registry (scdrbench.metrics), as
# results/tables/metrics.tsv does: results/metrics/{dataset}/{method}.tsv.


rule score_embedding:
    input:
        embedding="results/embed/{dataset}/{method}.h5ad",
        dataset="results/data/{dataset}/pca.h5ad",
    output:
        # update(): a failed re-run keeps the previous scores (src/scdrbench/common/keep.py)
        update("results/metrics/{dataset}/{method}.tsv"),
    log:
        "results/logs/score/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/score/{dataset}/{method}.tsv"
    params:
        script=get_script("score"),
        env=get_thread_env,
        seed=get_seed(),
        retry_after=get_retry_after("results/metrics/{dataset}/{method}.tsv"),
    threads: get_threads("score")
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_mem_mb("score"),
        runtime=get_runtime("score"),
        budget_time_s=get_budget_time_s("score"),
        budget_mem_mb=get_budget_mem_mb("score"),
    conda:
        "../envs/python.yaml"
    shell:
        "{params.env} python {params.script:q} --embedding {input.embedding:q} "
        "--dataset-file {input.dataset:q} --output {output:q} --dataset {wildcards.dataset} "
        "--method {wildcards.method} --seed {params.seed} --log {log:q} "
        "--time-budget-s {resources.budget_time_s} --mem-budget-mb {resources.budget_mem_mb}"
