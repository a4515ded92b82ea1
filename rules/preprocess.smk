# Stage 2: normalise, HVG, PCA, significant PCs, Leiden labels; subsample variants.


rule preprocess:
    input:
        "results/data/{dataset}/counts.h5ad",
    output:
        "results/data/{dataset}/pca.h5ad",
    log:
        "results/logs/preprocess/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess/{dataset}.tsv"
    params:
        script=get_script("preprocess"),
        env=get_thread_env,
        preprocess=get_preprocess_json(),
        labels=get_labels_json,
        seed=get_seed(),
    threads: get_threads("preprocess")
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_mem_mb("preprocess"),
        runtime=get_runtime("preprocess"),
    wildcard_constraints:
        dataset=_alternatives(BASE_DATASETS),
    conda:
        "../envs/python.yaml"
    shell:
        "{params.env} python {params.script:q} --counts {input:q} --output {output:q} "
        "--params {params.preprocess:q} --labels {params.labels:q} --seed {params.seed} "
        "--threads {threads} --log {log:q}"


rule subsample_dataset:
    input:
        get_subsample_parent,
    output:
        "results/data/{dataset}/pca.h5ad",
    log:
        "results/logs/subsample/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess/{dataset}.tsv"
    params:
        script=get_script("preprocess"),
        env=get_thread_env,
        size=get_subsample_size,
        seed=get_seed(),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_mem_mb("preprocess"),
        runtime=get_runtime("preprocess"),
    wildcard_constraints:
        dataset=_alternatives(SUBSAMPLED_DATASETS),
    conda:
        "../envs/python.yaml"
    shell:
        "{params.env} python {params.script:q} --subsample-of {input:q} "
        "--output {output:q} --size {params.size} --seed {params.seed} --log {log:q}"
