"""Summaries of the whole grid: a thin command line over the tables (:mod:`.tables`), their
markdown/HTML rendering (:mod:`.render`) and the figures (:mod:`.figures`).

Each command takes the explicit file lists the workflow passes (``expand``-ed, never a
directory walk) and writes atomically: ``python -m scdrbench.summary {timing,metrics,ranking,
heatmap,panels,figure,scaling} ...``.
"""

from __future__ import annotations

import argparse
import json
import logging

from scdrbench.common import keep
from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.io import read_table, write_table, write_text
from scdrbench.common.runtime import setup_logging
from scdrbench.summary.figures import comparison_figure, embedding_panels, metrics_heatmap
from scdrbench.summary.render import (
    METRICS_INTRO,
    RANKING_INTRO,
    metrics_markdown,
    metrics_sections,
    ranking_markdown,
    ranking_sections,
    render_html,
    render_markdown,
)
from scdrbench.summary.scaling import scaling_figure, scaling_table
from scdrbench.summary.tables import (
    TIMING_COLUMNS,
    metric_matrix,
    metric_order,
    metrics_table,
    ranking_table,
    read_dataset_meta,
    read_embedding_meta,
    timing_table,
    to_markdown,
)

__all__ = [
    "METRICS_INTRO",
    "RANKING_INTRO",
    "TIMING_COLUMNS",
    "comparison_figure",
    "embedding_panels",
    "metric_matrix",
    "metric_order",
    "metrics_heatmap",
    "metrics_markdown",
    "metrics_sections",
    "metrics_table",
    "ranking_markdown",
    "ranking_sections",
    "ranking_table",
    "read_dataset_meta",
    "read_embedding_meta",
    "render_html",
    "render_markdown",
    "scaling_figure",
    "scaling_table",
    "timing_table",
    "to_markdown",
]

log = logging.getLogger("scdrbench.summary")


def _table(path, what: str):
    """A table the summary made earlier (timing, metrics, ranking), checked (one line if not)."""
    return read_table(path, what=what, columns=["dataset", "method"])


@cli_errors
def cli(argv=None) -> None:
    p = argparse.ArgumentParser(description="Summaries: timing/metrics tables, figures")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("timing")
    t.add_argument("--benchmarks", nargs="+", required=True)
    t.add_argument("--embeddings", nargs="+", required=True)
    t.add_argument("--datasets", nargs="+", required=True)
    t.add_argument("--tsv", required=True)
    t.add_argument("--md", required=True)
    t.add_argument("--labels", default="{}", help="method id -> label (JSON), the config's")
    m = sub.add_parser("metrics")
    m.add_argument("--metrics", nargs="+", required=True)
    m.add_argument("--embeddings", nargs="*", default=[], help="marks scores of kept embeddings")
    m.add_argument("--tsv", required=True)
    m.add_argument("--md", required=True)
    m.add_argument("--html")
    f = sub.add_parser("figure")
    f.add_argument("--embeddings", nargs="+", required=True)
    f.add_argument("--timing", required=True)
    f.add_argument("--metrics")
    f.add_argument("--outputs", nargs="+", required=True)
    r = sub.add_parser("ranking")
    r.add_argument("--metrics", required=True)
    r.add_argument("--timing")
    r.add_argument("--tsv", required=True)
    r.add_argument("--md", required=True)
    r.add_argument("--html")
    h = sub.add_parser("heatmap")
    h.add_argument("--metrics", required=True)
    h.add_argument("--ranking")
    h.add_argument("--timing")
    h.add_argument("--outputs", nargs="+", required=True)
    e = sub.add_parser("panels")
    e.add_argument("--embeddings", nargs="+", required=True)
    e.add_argument("--metrics")
    e.add_argument("--outputs", nargs="+", required=True)
    e.add_argument("--labels", default="{}", help="method id -> label (JSON), the config's")
    fi = sub.add_parser("findings")
    fi.add_argument("--metrics", required=True)
    fi.add_argument("--timing", required=True)
    fi.add_argument("--md", required=True)
    fi.add_argument("--ladder", help="the scaling ladder's table: claims also decided on its rungs")
    st = sub.add_parser("stability")
    st.add_argument("--tsv-files", nargs="+", required=True)
    st.add_argument("--h5ad-files", nargs="+", required=True)
    st.add_argument("--tsv", required=True)
    st.add_argument("--md", required=True)
    st.add_argument("--outputs", nargs="+", required=True)
    sc_ = sub.add_parser("scaling")
    sc_.add_argument("--timing", required=True)
    sc_.add_argument("--outputs", nargs="+", required=True)
    for sp_ in (t, m, f, r, h, e, sc_, st, fi):
        sp_.add_argument("--log")
    a = p.parse_args(argv)
    setup_logging(a.log)
    try:
        _run(a)
    except BaseException:
        # Snakemake restores the previous outputs (update()): the next run makes them again
        keep.note_retry(_outputs(a), "failed")
        raise
    # a state file, so that a failure's note fits in place even on a full disk (keep.py)
    try:
        keep.record(_outputs(a)[:1], [], "ok")
    except ScdrbenchError as err:
        log.warning("%s (the outputs are complete)", err)


def _outputs(a) -> list[str]:
    """The files a summary command writes."""
    named = [getattr(a, k, None) for k in ("tsv", "md", "html")]
    return [*filter(None, named), *(getattr(a, "outputs", None) or [])]


def _run(a) -> None:
    """Make the command's tables or figures."""
    if a.command == "timing":
        df = timing_table(a.benchmarks, a.embeddings, a.datasets, json.loads(a.labels))
        write_table(df, a.tsv)
        write_text(to_markdown(df), a.md)
        log.info("timing table: %d rows", len(df))
    elif a.command == "metrics":
        df = metrics_table(a.metrics, a.embeddings)
        write_table(df, a.tsv)
        write_text(metrics_markdown(df), a.md)
        if a.html:
            write_text(
                render_html("Metrics", METRICS_INTRO, metrics_sections(df), "metrics"), a.html
            )
        log.info("metrics table: %d rows", len(df))
    elif a.command == "ranking":
        metrics = _table(a.metrics, "metrics table")
        timing = _table(a.timing, "timing table") if a.timing else None
        df = ranking_table(metrics, timing)
        write_table(df, a.tsv)
        write_text(ranking_markdown(df), a.md)
        if a.html:
            write_text(render_html("Ranking", RANKING_INTRO, ranking_sections(df)), a.html)
        log.info("ranking: %d rows over %d datasets", len(df), df["dataset"].nunique())
    elif a.command == "heatmap":
        metrics = _table(a.metrics, "metrics table")
        ranking = _table(a.ranking, "ranking table") if a.ranking else None
        timing = _table(a.timing, "timing table") if a.timing else None
        metrics_heatmap(metrics, ranking, a.outputs, timing=timing)
        log.info("wrote %s", ", ".join(a.outputs))
    elif a.command == "scaling":
        scaling_figure(_table(a.timing, "timing table"), a.outputs)
        log.info("wrote %s", ", ".join(a.outputs))
    elif a.command == "findings":
        from scdrbench.summary.findings import (
            at_scale,
            at_scale_markdown,
            findings,
            findings_markdown,
        )

        metrics, timing = _table(a.metrics, "metrics table"), _table(a.timing, "timing table")
        table = findings(metrics, timing)
        scale = at_scale(metrics, timing, a.ladder)
        write_text(findings_markdown(table) + "\n" + at_scale_markdown(scale), a.md)
        log.info("findings: %d verdicts", len(table))
    elif a.command == "stability":
        from scdrbench.summary.stability import (
            stability_figure,
            stability_markdown,
            stability_table,
        )

        df = stability_table(a.tsv_files)
        write_table(df, a.tsv)
        write_text(stability_markdown(df), a.md)
        stability_figure(a.h5ad_files, a.outputs)
        log.info("stability: %d rows", len(df))
    elif a.command == "panels":
        metrics = _table(a.metrics, "metrics table") if a.metrics else None
        embedding_panels(a.embeddings, a.outputs, metrics, json.loads(a.labels))
    else:
        timing = _table(a.timing, "timing table")
        metrics = _table(a.metrics, "metrics table") if a.metrics else None
        comparison_figure(a.embeddings, timing, metrics, a.outputs)
        log.info("wrote %s", ", ".join(a.outputs))
