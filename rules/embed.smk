# Stage 3: one job per dataset x method; one rule per method family (environment): embed_python
# and embed_tensorflow (the same job in two conda environments), embed_precomputed (coordinates
# made elsewhere, read and matched to the cells; the file is an input, so a new one re-scores).

from scdrbench.common.environments import FAMILY_ENVS

# each family's environment file, as the family check of the config reads it (precomputed: its
# own rule below)
EMBED_ENVS = {f: f"../{path}" for f, path in FAMILY_ENVS.items() if f != "precomputed"}

for _family, _env in EMBED_ENVS.items():

    rule:
        name:
            f"embed_{_family}"
        input:
            "results/data/{dataset}/pca.h5ad",
        output:
            # update(): Snakemake leaves the previous file while the job runs (src/scdrbench/common/keep.py)
            update("results/embed/{dataset}/{method}.h5ad"),
        log:
            "results/logs/embed/{dataset}/{method}.log",
        benchmark:
            repeat("results/benchmarks/embed/{dataset}/{method}.tsv", REPEATS)
        params:
            script=get_script("embed"),
            env=get_thread_env,
            entry=get_method_entry_json,
            digest=get_method_digest,
            seed=get_seed(),
            retry=get_retry_token,
            retry_after=get_retry_after("results/embed/{dataset}/{method}.h5ad"),
        threads: get_threads("embed")
        resources:
            cpus_per_task=get_cpus_per_task,
            mem_mb=get_mem_mb("embed"),
            runtime=get_runtime("embed"),
            budget_time_s=get_budget_time_s("embed"),
            budget_mem_mb=get_budget_mem_mb("embed"),
            gpu=get_gpu,
        wildcard_constraints:
            method=_alternatives(FAMILIES[_family]),
        conda:
            _env
        shell:
            "{params.env} python {params.script:q} --input {input:q} --output {output:q} "
            "--dataset {wildcards.dataset} --method {wildcards.method} --entry {params.entry:q} "
            "--seed {params.seed} --threads {threads} --mem-mb {resources.mem_mb} --log {log:q} "
            "--time-budget-s {resources.budget_time_s} --mem-budget-mb {resources.budget_mem_mb} "
            "--retry-token={params.retry:q}"


rule embed_precomputed:
    input:
        data="results/data/{dataset}/pca.h5ad",
        coordinates=get_precomputed_file,
    output:
        update("results/embed/{dataset}/{method}.h5ad"),
    log:
        "results/logs/embed/{dataset}/{method}.log",
    benchmark:
        repeat("results/benchmarks/embed/{dataset}/{method}.tsv", REPEATS)
    params:
        script=get_script("embed"),
        env=get_thread_env,
        entry=get_method_entry_json,
        digest=get_method_digest,
        seed=get_seed(),
        retry_after=get_retry_after("results/embed/{dataset}/{method}.h5ad"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=get_mem_mb("embed"),
        runtime=get_runtime("embed"),
    wildcard_constraints:
        method=_alternatives(FAMILIES["precomputed"]),
    conda:
        "../envs/python.yaml"
    shell:
        "{params.env} python {params.script:q} --input {input.data:q} --output {output:q} "
        "--dataset {wildcards.dataset} --method {wildcards.method} --entry {params.entry:q} "
        "--seed {params.seed} --threads {threads} --log {log:q}"
