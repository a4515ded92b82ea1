# Stability (config `stability`): each method on the listed data sets, several seeds and
# fixed-seed subsamples in one job per data set x method, one rule per method family (its
# environment); then one table and one figure.

for _family, _env in EMBED_ENVS.items():

    rule:
        name:
            f"stability_{_family}"
        input:
            "results/data/{dataset}/pca.h5ad",
        output:
            tsv=update("results/stability/{dataset}/{method}.tsv"),
            h5ad=update("results/stability/{dataset}/{method}.h5ad"),
        log:
            "results/logs/stability/{dataset}/{method}.log",
        params:
            script=get_script("stability"),
            env=get_thread_env,
            entry=get_method_entry_json,
            digest=get_method_digest,
            stability=get_stability_json(),
            seed=get_seed(),
            retry_after=get_retry_after("results/stability/{dataset}/{method}.tsv"),
        threads: get_threads("embed")
        resources:
            cpus_per_task=get_cpus_per_task,
            mem_mb=get_mem_mb("embed"),
            runtime=get_runtime("embed"),
            budget_time_s=get_budget_time_s("embed"),
            budget_mem_mb=get_budget_mem_mb("embed"),
        wildcard_constraints:
            method=_alternatives(FAMILIES[_family]),
        conda:
            _env
        shell:
            "{params.env} python {params.script:q} --input {input:q} --tsv {output.tsv:q} "
            "--h5ad {output.h5ad:q} --dataset {wildcards.dataset} --method {wildcards.method} "
            "--entry {params.entry:q} --stability {params.stability:q} --seed {params.seed} "
            "--threads {threads} --log {log:q} --time-budget-s {resources.budget_time_s} "
            "--mem-budget-mb {resources.budget_mem_mb}"


rule stability_summary:
    input:
        tsv=get_stability_outputs("tsv"),
        h5ad=get_stability_outputs("h5ad"),
    output:
        tsv=update(
            report(
                "results/tables/stability.tsv",
                caption="report/stability.rst",
                category="Tables",
            )
        ),
        md=update("results/tables/stability.md"),
        png=update(
            report(
                "results/figures/stability.png",
                caption="report/stability.rst",
                category="Figures",
            )
        ),
        pdf=update("results/figures/stability.pdf"),
    log:
        "results/logs/summary/stability.log",
    params:
        script=get_script("summary"),
        retry_after=get_retry_after("results/tables/stability.tsv"),
    threads: 1
    resources:
        cpus_per_task=get_cpus_per_task,
        mem_mb=2000,
        runtime=20,
    conda:
        "../envs/python.yaml"
    shell:
        "python {params.script:q} stability --tsv-files {input.tsv:q} --h5ad-files {input.h5ad:q} "
        "--tsv {output.tsv:q} --md {output.md:q} --outputs {output.png:q} {output.pdf:q} "
        "--log {log:q}"
