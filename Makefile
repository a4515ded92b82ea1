# scdrbench: two commands set everything up on a fresh machine.
#   make demo   create .venv, install pinned dependencies, run the whole workflow offline
#               (CONFIG=my.yaml: the demo extended by your file)
#   make test   create .venv, install, then format check, lint, unit tests, dry runs, tiny run
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# Keep TensorFlow's C++ start-up chatter out of terminals and logs.
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: venv demo test report lint format dryrun run check-config clean lock ladder side-by-side proxy-vs-real paper stability-100k

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

# The demo extended by your file: `make demo CONFIG=my.yaml` reads config.yaml, the demo's
# demo.yaml, then yours (yours wins). A bare `--configfile my.yaml` would replace demo.yaml.
DEMO = --profile profiles/demo $(if $(CONFIG),--configfile profiles/demo/demo.yaml $(CONFIG))
demo: $(STAMP)
	$(if $(CONFIG),$(BIN)/python -m scdrbench.stages.check_config profiles/demo/demo.yaml $(CONFIG))
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake $(DEMO) --cores $(CORES)
	@echo "Figures: results/figures/  Tables: results/tables/"

# The demo's report: brings the demo up to date first (a no-op after `make demo`), then bundles
# the tables and figures; `bash tests/report_screenshot.sh` checks it renders (needs chromium).
report: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake $(DEMO) --cores $(CORES)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake $(DEMO) --cores $(CORES) --report results/report.html
	@echo "Report: results/report.html"

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH bash tests/run_all.sh

lint: $(STAMP)
	$(BIN)/ruff format --check src scripts tests benchmarks
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format src scripts tests benchmarks
	$(BIN)/ruff check --fix src scripts tests benchmarks
	$(BIN)/snakefmt Snakefile rules

# The scaling ladder (docs/scale.md): every method on the 1.3M-cell proxy, rung by rung;
# resumable, hours on 2 cores; results in benchmarks/results/.
ladder: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/ladder.py run
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/ladder.py table

# Stability at 100k cells of the proxy (t-SNE, UMAP, both autoencoders; 3 seeds, 3 subsamples):
# about an hour on 2 cores; results in benchmarks/results/stability_100k.{md,tsv,png}.
stability-100k: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/stability_100k.py run

# The paper run as a user types it on this project's stand-ins (docs/paper-run.md):
# benchmarks/paper.yaml (the 1.3M proxy with simulated antibodies, a CBMC-sized simulated
# CITE-seq set, per-job budgets for a 2-core 24 GiB node); makes the missing inputs under
# scratch/, runs Snakemake (resumable, --keep-going), exports the figure, heatmap, tables and
# findings to benchmarks/results/paper_run/. Hours on 2 cores. PAPER_CELLS=20000: the same on a
# small proxy, in and exported to scratch/paper_n20000/ (a check, never committed).
# PAPER_METHODS="pca tsne ae_citeseq" (with PAPER_CELLS): only those methods.
PAPER_CELLS ?=
PAPER_METHODS ?=
paper: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/paper_run.py run --cores $(CORES) $(if $(PAPER_CELLS),--n-cells $(PAPER_CELLS)) $(if $(PAPER_METHODS),--methods $(PAPER_METHODS))

# The 1.3M proxy against the real cells it stands for (the first 10k cells x 1,000 genes of the
# real file, ../shared/data/mouse_brain_1m/): the same statistics through the project's own
# preprocessing, methods and metrics, for the earlier proxy and the calibrated one; a few
# minutes per data set on 2 cores; benchmarks/results/proxy_vs_real.{md,png}.
proxy-vs-real: $(STAMP)
	$(BIN)/python benchmarks/proxy_vs_real.py

# The project's t-SNE and UMAP jobs against bare openTSNE and umap-learn on the ladder's 1.3M
# rung (its input made first when missing), alone on the machine: on 2 cores t-SNE's pair took
# 3.0 h and UMAP's 0.95 h (AMD EPYC VM); one method per sitting: `make side-by-side METHODS=umap`.
RUNG ?= 1306127
METHODS ?= tsne umap
side-by-side: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/bench_side_by_side.py --rung $(RUNG) --methods $(METHODS)

# Your own run: `make run CONFIG=my.yaml CORES=32`. The config files are checked first, so a
# YAML syntax error names its file and line (Snakemake reads --configfile before the workflow).
CONFIG ?=
run: check-config
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake $(if $(CONFIG),--configfile $(CONFIG)) --cores $(CORES)

check-config: $(STAMP)
	$(BIN)/python -m scdrbench.stages.check_config $(CONFIG)

dryrun: check-config
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake -n $(if $(CONFIG),--configfile $(CONFIG)) --cores 32

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sort -f > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf results .snakemake
