"""The summary command line: ``python -m scdrbench.summary {timing,metrics,ranking,heatmap,panels,
figure,scaling,findings,stability} ...``, one function per sub-command, dispatched from
:data:`COMMANDS` (sub-command -> function and its arguments).

Each command takes the explicit file lists the workflow passes (``expand``-ed, never a
directory walk) and writes atomically.
"""

from __future__ import annotations

import argparse
import json
import logging

from scdrbench.common import keep
from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.io import read_table, write_table, write_text
from scdrbench.common.runtime import setup_logging

log = logging.getLogger("scdrbench.summary")

MANY = {"nargs": "+", "required": True}
NEEDED = {"required": True}
LABELS = {"default": "{}", "help": "method id -> label (JSON), the config's"}


def _table(path, what: str):
    """A table the summary made earlier (timing, metrics, ranking), checked (one line if not)."""
    return read_table(path, what=what, columns=["dataset", "method"])


def _optional(path, what: str):
    """:func:`_table`, or None when the option was not given."""
    return _table(path, what) if path else None


def timing(a) -> None:
    from scdrbench.summary.tables import timing_table, to_markdown

    df = timing_table(a.benchmarks, a.embeddings, a.datasets, json.loads(a.labels))
    write_table(df, a.tsv)
    write_text(to_markdown(df), a.md)
    log.info("timing table: %d rows", len(df))


def metrics(a) -> None:
    from scdrbench.summary.render import (
        METRICS_INTRO,
        metrics_markdown,
        metrics_sections,
        render_html,
    )
    from scdrbench.summary.tables import metrics_table

    df = metrics_table(a.metrics, a.embeddings)
    write_table(df, a.tsv)
    write_text(metrics_markdown(df), a.md)
    if a.html:
        write_text(render_html("Metrics", METRICS_INTRO, metrics_sections(df), "metrics"), a.html)
    log.info("metrics table: %d rows", len(df))


def ranking(a) -> None:
    from scdrbench.summary.render import (
        RANKING_INTRO,
        ranking_markdown,
        ranking_sections,
        render_html,
    )
    from scdrbench.summary.tables import ranking_table

    df = ranking_table(_table(a.metrics, "metrics table"), _optional(a.timing, "timing table"))
    write_table(df, a.tsv)
    write_text(ranking_markdown(df), a.md)
    if a.html:
        write_text(render_html("Ranking", RANKING_INTRO, ranking_sections(df)), a.html)
    log.info("ranking: %d rows over %d datasets", len(df), df["dataset"].nunique())


def heatmap(a) -> None:
    from scdrbench.summary.figures import metrics_heatmap

    metrics = _table(a.metrics, "metrics table")
    ranking = _optional(a.ranking, "ranking table")
    timing = _optional(a.timing, "timing table")
    metrics_heatmap(metrics, ranking, a.outputs, timing=timing)
    log.info("wrote %s", ", ".join(a.outputs))


def scaling(a) -> None:
    from scdrbench.summary.scaling import scaling_figure

    scaling_figure(_table(a.timing, "timing table"), a.outputs)
    log.info("wrote %s", ", ".join(a.outputs))


def findings(a) -> None:
    from scdrbench.summary.findings import at_scale, at_scale_markdown, findings_markdown
    from scdrbench.summary.findings import findings as verdicts

    metrics, timing = _table(a.metrics, "metrics table"), _table(a.timing, "timing table")
    table = verdicts(metrics, timing)
    scale = at_scale(metrics, timing, a.ladder)
    write_text(findings_markdown(table) + "\n" + at_scale_markdown(scale), a.md)
    log.info("findings: %d verdicts", len(table))


def stability(a) -> None:
    from scdrbench.summary.stability import stability_figure, stability_markdown, stability_table

    df = stability_table(a.tsv_files)
    write_table(df, a.tsv)
    write_text(stability_markdown(df), a.md)
    stability_figure(a.h5ad_files, a.outputs)
    log.info("stability: %d rows", len(df))


def panels(a) -> None:
    from scdrbench.summary.figures import embedding_panels

    metrics = _optional(a.metrics, "metrics table")
    embedding_panels(a.embeddings, a.outputs, metrics, json.loads(a.labels))


def figure(a) -> None:
    from scdrbench.summary.figures import comparison_figure

    timing = _table(a.timing, "timing table")
    metrics = _optional(a.metrics, "metrics table")
    comparison_figure(a.embeddings, timing, metrics, a.outputs)
    log.info("wrote %s", ", ".join(a.outputs))


#: sub-command -> (function, its arguments: (option, argparse keywords)); every one has --log
COMMANDS = {
    "timing": (
        timing,
        [
            *(("--benchmarks", MANY), ("--embeddings", MANY), ("--datasets", MANY)),
            *(("--tsv", NEEDED), ("--md", NEEDED), ("--labels", LABELS)),
        ],
    ),
    "metrics": (
        metrics,
        [
            ("--metrics", MANY),
            (
                "--embeddings",
                {"nargs": "*", "default": [], "help": "marks scores of kept embeddings"},
            ),
            *(("--tsv", NEEDED), ("--md", NEEDED), ("--html", {})),
        ],
    ),
    "figure": (
        figure,
        [("--embeddings", MANY), ("--timing", NEEDED), ("--metrics", {}), ("--outputs", MANY)],
    ),
    "ranking": (
        ranking,
        [
            *(("--metrics", NEEDED), ("--timing", {})),
            *(("--tsv", NEEDED), ("--md", NEEDED), ("--html", {})),
        ],
    ),
    "heatmap": (
        heatmap,
        [("--metrics", NEEDED), ("--ranking", {}), ("--timing", {}), ("--outputs", MANY)],
    ),
    "panels": (
        panels,
        [("--embeddings", MANY), ("--metrics", {}), ("--outputs", MANY), ("--labels", LABELS)],
    ),
    "findings": (
        findings,
        [
            *(("--metrics", NEEDED), ("--timing", NEEDED), ("--md", NEEDED)),
            ("--ladder", {"help": "the scaling ladder's table: claims also decided on its rungs"}),
        ],
    ),
    "stability": (
        stability,
        [
            *(("--tsv-files", MANY), ("--h5ad-files", MANY)),
            *(("--tsv", NEEDED), ("--md", NEEDED), ("--outputs", MANY)),
        ],
    ),
    "scaling": (scaling, [("--timing", NEEDED), ("--outputs", MANY)]),
}


def parser() -> argparse.ArgumentParser:
    """The command line, built from :data:`COMMANDS`."""
    p = argparse.ArgumentParser(description="Summaries: timing/metrics tables, figures")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, arguments) in COMMANDS.items():
        sp = sub.add_parser(name)
        for option, keywords in arguments:
            sp.add_argument(option, **keywords)
        sp.add_argument("--log")
    return p


@cli_errors
def cli(argv=None) -> None:
    a = parser().parse_args(argv)
    setup_logging(a.log)
    try:
        COMMANDS[a.command][0](a)
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
