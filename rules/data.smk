# Stage 1: download (or locate) each data set and prepare counts.h5ad.


rule download:
    output:
        "results/downloads/{dataset}/{filename}",
    log:
        "results/logs/download/{dataset}/{filename}.log",
    params:
        script=get_script("download"),
        url=get_download_url,
        checks=get_download_checks,
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=500,
        runtime=240,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} "
        "--url {params.url:q} --output {output:q} --dataset {wildcards.dataset} "
        "{params.checks} --log {log:q}"


rule prepare_dataset:
    input:
        unpack(get_prepare_inputs),
    output:
        "results/data/{dataset}/counts.h5ad",
    log:
        "results/logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    params:
        script=get_script("prepare"),
        env=get_thread_env,
        entry=get_dataset_entry_json,
        digest=get_dataset_digest,
        inputs=get_prepare_inputs_json,
        seed=config["seed"],
    threads: get_threads("prepare")
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_mem_mb("prepare"),
        runtime=get_runtime("prepare"),
    conda:
        "../envs/python.yaml"
    shell:
        "{params.env} python {params.script:q} --dataset {wildcards.dataset} "
        "--entry {params.entry:q} --inputs {params.inputs:q} --output {output:q} "
        "--threads {threads} --seed {params.seed} --log {log:q}"
