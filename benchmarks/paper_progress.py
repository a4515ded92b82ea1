"""The paper run's progress, committed as its parts finish (``python benchmarks/paper_run.py
progress``; ``run`` ends every part with it): one row per finished embedding job of the run's
data sets under ``results/``, with the machine it ran on, Snakemake's ``benchmark:`` seconds and
memory, the fit and kernel peak the job logged, its status and its scores, merged into
``benchmarks/results/paper_run/progress.{tsv,md}``.

``results/`` lives on one machine. A run that spans sittings can lose it with the machine (it has
happened: a sitting started on a new machine, and the 1.3M jobs of earlier sittings were gone),
so the numbers each part measured are committed, not left in ``results/`` alone. Rows merge:
a job read again is not added twice (its row is brought up to date: scored since, say); a job
that ran again (on another machine, or after a budget was raised) adds its own row beside the
earlier one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

#: The columns of a progress row, before the scores (one column per metric the job has).
COLUMNS = [
    "finished_utc",
    "machine",
    "dataset",
    "method",
    "n_cells",
    "status",
    "threads",
    "s",
    "cpu_time",
    "max_rss_mb",
    "fit_seconds",
    "fit_cpu_seconds",
    "peak_rss_mb",
    "status_message",
    "shared_with",
]
#: What tells two runs of a job apart (a row read again unchanged has the same values).
KEY = ["dataset", "method", "s", "fit_seconds", "status"]
#: The scores the markdown table shows (the TSV has every metric the job has).
SHOWN = ["knn_accuracy", "knc", "cpd"]
#: How the TSV writes numbers (six significant digits: 7,319.12 s, 0.765432).
FLOAT = ".6g"


#: Timing columns the progress rows leave out (the config's, not the job's measurements).
_TIMING_ONLY = [
    "method_label",
    "repeat",
    "n_genes",
    "input",
    "input_dims",
    "threads_used",
    "cpu_seconds",
    "essay_1m_seconds",
]


def job_rows(results: Path, config: dict):
    """The finished embedding jobs of the paper selection under ``results/``: their timing rows
    (the summary's own ``timing_table``) with the machine, the time the embedding was written
    and, where the job was scored, one column per metric."""
    import pandas as pd
    from paper_estimate import paper_sets

    from scdrbench.common.errors import ScdrbenchError
    from scdrbench.common.provenance import machine
    from scdrbench.summary.tables import metrics_table, timing_table

    here, rows, parts = machine(), [], _parts(results)
    for ds in paper_sets(config):
        for m in config["selection"]["methods"]:
            emb = results / "embed" / ds / f"{m}.h5ad"
            bench = results / "benchmarks" / "embed" / ds / f"{m}.tsv"
            if not (emb.exists() and bench.exists()):
                continue
            scores = results / "metrics" / ds / f"{m}.tsv"
            try:
                row = timing_table([str(bench)], [str(emb)], [])
                wide = metrics_table([str(scores)]) if scores.exists() else None
            except ScdrbenchError as err:  # a damaged file: the run's own jobs say so
                print(f"progress: {ds}/{m} left out: {err}")
                continue
            done = dt.datetime.fromtimestamp(emb.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d %H:%M")
            # what shared the machine: the part (a row of the sittings file) it finished in
            began = [shared for started, shared in parts if started <= done]
            row = row.iloc[[-1]].assign(
                machine=here,
                finished_utc=done,
                shared_with=began[-1] if began else "not recorded",
            )
            if wide is not None:
                wide = wide.pivot_table(
                    index=["dataset", "method"], columns="metric", values="value"
                )
                row = row.merge(wide.reset_index(), on=["dataset", "method"], how="left")
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.concat(rows, ignore_index=True)
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS + _TIMING_ONLY]]


def _parts(results: Path) -> list[tuple[str, str]]:
    """``(started_utc, shared_with)`` of each part of the run, in order (the sittings file)."""
    import pandas as pd
    from paper_export import SITTINGS

    path = results / SITTINGS
    if not path.exists():
        return []
    ran = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    shared = ran["shared_with"] if "shared_with" in ran else ["not recorded"] * len(ran)
    return sorted(zip(ran["started_utc"], shared, strict=True))


def merge(earlier, now):
    """``earlier`` (the committed rows) updated by ``now`` (the rows of results/): a row of the
    same job run (by :data:`KEY`) is replaced by its row in ``now`` (scored since, say), the
    other earlier rows stay; sorted by data set, method and time."""
    import pandas as pd

    if earlier is None or not len(earlier):
        return now.reset_index(drop=True)
    fresh = set(_keys(now))
    kept = earlier.loc[[k not in fresh for k in _keys(earlier)]]
    both = pd.concat([kept, now], ignore_index=True) if len(now) else kept
    return both.sort_values(["dataset", "method", "finished_utc"], kind="stable").reset_index(
        drop=True
    )


def _keys(frame) -> list[tuple]:
    """Each row's :data:`KEY`, numbers as the TSV writes them (a row read back compares equal)."""
    cells = lambda v: f"{v:{FLOAT}}" if isinstance(v, float) else str(v)  # noqa: E731
    return [tuple(map(cells, r)) for r in frame[KEY].itertuples(index=False)]


def write_progress(results: Path, out: Path, config: dict, command: str) -> str:
    """Merge the finished jobs under ``results/`` into ``out/progress.{tsv,md}`` (header: how
    it was made); returns a one-line account."""
    import pandas as pd
    from paper_export import short_command

    from scdrbench.common.io import write_text
    from scdrbench.common.provenance import versions

    tsv, md = out / "progress.tsv", out / "progress.md"
    earlier = pd.read_csv(tsv, sep="\t", comment="#") if tsv.exists() else None
    rows = merge(earlier, job_rows(results, config))
    # a file of an earlier version may lack a column: it reads as empty there
    rows = rows.reindex(columns=COLUMNS + [c for c in rows.columns if c not in COLUMNS])
    head = [
        "The paper run's finished embedding jobs, part by part (benchmarks/paper_progress.py)",
        f"updated: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"versions (where this update was written): {versions()}",
        f"command: {short_command(command)}",
        "columns: finished_utc, when the job wrote its embedding; machine, where it ran; s, "
        "cpu_time, max_rss_mb: Snakemake's benchmark row (wall, CPU seconds, memory sampled "
        "every 30 s); fit_seconds, fit_cpu_seconds, peak_rss_mb: the job's own fit and kernel "
        "high-water mark; shared_with, what else ran on the machine during the part the job "
        "finished in (results/paper_run_sittings.tsv); then the job's scores (one column per "
        "metric), empty until scored",
    ]
    out.mkdir(parents=True, exist_ok=True)
    table = rows.to_csv(sep="\t", index=False, float_format=f"%{FLOAT}")
    write_text("".join(f"# {line}\n" for line in head) + table, tsv)
    text_columns = ("status_message", "shared_with")
    shown = [c for c in COLUMNS if c not in text_columns] + [c for c in SHOWN if c in rows]
    shown.append("shared_with")
    text = "\n".join(f"> {line}  " for line in head) + "\n\n"
    fmt = [".3f" if c in SHOWN else ",.0f" for c in shown]
    text += rows[shown].to_markdown(index=False, floatfmt=fmt, missingval="") + "\n"
    write_text(text, md)
    return f"progress: {len(rows)} job rows in {tsv}"
