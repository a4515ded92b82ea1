# scdrbench: dimensionality reduction benchmark for single-cell RNA-seq.
#
# Path grammar (results/ reads like the DAG):
#   results/downloads/{dataset}/{file}              raw downloads (resumable, verified)
#   results/data/{dataset}/counts.h5ad              raw counts, obs['label'], provenance
#   results/data/{dataset}/pca.h5ad                 log-HVG X, obsm['X_pca'], n_significant_pcs
#   results/embed/{dataset}/{method}.h5ad           obsm['X_emb'] (n x 2), fit_seconds, peak_rss_mb
#   results/metrics/{dataset}/{method}.tsv          one tidy row per metric (the score stage's)
#   results/benchmarks/{stage}/{dataset}/{method}.tsv   Snakemake benchmark rows
#   results/benchmarks/summary/{job}.tsv            the summary jobs' benchmark rows
#   results/logs/{stage}/{dataset}/{method}.log
#   results/tables/{timing,metrics,ranking}.{tsv,md} (+ metrics/ranking .html)
#   results/figures/{comparison,scaling,metrics_heatmap}.{png,pdf}
#   results/figures/embeddings/{dataset}/{method}.png


import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/targets.smk"
include: "rules/data.smk"
include: "rules/preprocess.smk"
include: "rules/embed.smk"
include: "rules/score.smk"
include: "rules/summary.smk"
include: "rules/stability.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),


rule embeddings:
    input:
        get_embedding_outputs(),


rule score:
    input:
        get_score_outputs(),


rule summary:
    input:
        get_summary_outputs(),
