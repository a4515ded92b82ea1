"""The metrics and ranking tables as markdown and stand-alone HTML (shown inline by the report)."""

from __future__ import annotations

import pandas as pd

from scdrbench.summary.tables import (
    _fmt_seconds,
    _fmt_value,
    _method_labels,
    kept_methods,
    metric_matrix,
    metric_order,
)

#: After a method's name in the tables: its scores come from a result kept through a failed
#: re-run (the one-line reason is in metrics.tsv's and ranking.tsv's ``kept`` column).
KEPT_MARK = " (kept: re-run failed)"

METRICS_INTRO = (
    "One table per dataset; every metric is higher-is-better. n/a: not applicable or not "
    "scored (the reason is listed under the table)."
)
RANKING_INTRO = (
    "Per dataset, methods ordered by their mean rank across the metrics (1 = best on every "
    "metric). A metric that is n/a for every method of a dataset is left out of its ranking; a "
    "method with n/a on a metric ranks last on it. Job: median wall-clock time of the whole "
    "embedding job; fit: median time of the fit alone (timing.tsv)."
)

#: (heading, table of strings, lines under the table) per dataset
Section = tuple[str, pd.DataFrame, list[str]]


def metrics_sections(metrics: pd.DataFrame, timing: pd.DataFrame | None = None) -> list[Section]:
    """Per dataset: methods x metrics (formatted values), and the notes of the NaN values."""
    labels = _method_labels(timing)
    order = metric_order(metrics)
    sections = []
    for ds in dict.fromkeys(metrics["dataset"]):
        wide = metric_matrix(metrics, ds)
        kept = kept_methods(metrics, ds)
        table = pd.DataFrame(
            {
                "method": [
                    labels.get((ds, m), m) + (KEPT_MARK if m in kept else "") for m in wide.index
                ]
            }
            | {metric: [_fmt_value(v) for v in wide[metric]] for metric in order}
        )
        sub = metrics[(metrics["dataset"] == ds) & metrics["value"].isna()]
        notes = [
            f"{r.method} / {r.metric}: {r.note}"
            for r in sub.itertuples()
            if "note" in sub and isinstance(r.note, str) and r.note.strip()
        ]
        sections.append((ds, table, ["Not scored:", *notes] if notes else []))
    return sections


def ranking_sections(ranking: pd.DataFrame) -> list[Section]:
    """Per dataset: rank, method, mean rank, each metric's rank, job and fit times."""
    rank_cols = [c for c in ranking.columns if c.startswith("rank_")]
    sections = []
    for ds, sub in ranking.groupby("dataset", sort=False):
        kept = kept_methods(ranking, ds)
        table = pd.DataFrame(
            {
                "rank": [_fmt_value(v, "g") for v in sub["rank"]],
                "method": [
                    str(label) + (KEPT_MARK if m in kept else "")
                    for m, label in zip(sub["method"], sub["method_label"], strict=True)
                ],
                "mean rank": [_fmt_value(v, ".2f") for v in sub["mean_rank"]],
            }
            | {
                c.removeprefix("rank_"): [_fmt_value(v, "g") for v in sub[c]]
                for c in rank_cols
                if sub[c].notna().any()
            }
            | {
                "job": [_fmt_seconds(v) for v in sub["job_s"]],
                "fit": [_fmt_seconds(v) for v in sub["fit_s"]],
            }
        )
        left_out = sub["left_out"].iloc[0]
        foot = []
        if isinstance(left_out, str) and left_out:
            foot = [f"Left out (n/a for every method): {left_out.replace(',', ', ')}"]
        sections.append((ds, table, foot))
    return sections


def render_markdown(title: str, intro: str, sections: list[Section]) -> str:
    """Sections as markdown: a heading and a GitHub table per dataset."""
    parts = [f"# {title}", intro]
    for heading, table, foot in sections:
        parts.append(f"## {heading}\n\n" + table.to_markdown(index=False, disable_numparse=True))
        if foot:
            lines = [foot[0]] if foot[0].endswith(":") else []
            items = foot[1:] if lines else foot
            parts.append("\n\n".join(lines + ["\n".join(f"- {x}" for x in items)]))
    return "\n\n".join(p.strip() for p in parts) + "\n"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th { background: #f3f3f3; } td:nth-child(2), th:nth-child(2) { text-align: left; }
.metrics td:first-child, .metrics th:first-child { text-align: left; }
p.intro { max-width: 60em; color: #444; } ul { color: #555; }
"""


def render_html(title: str, intro: str, sections: list[Section], css_class: str = "") -> str:
    """Sections as a stand-alone HTML page (shown inline by Snakemake's report)."""
    import html

    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="intro">{html.escape(intro)}</p>']
    for heading, table, foot in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.append(table.to_html(index=False, classes=css_class or None, border=0, na_rep="n/a"))
        if foot:
            head = foot[0] if foot[0].endswith(":") else ""
            items = foot[1:] if head else foot
            if head:
                body.append(f"<p>{html.escape(head)}</p>")
            body.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def metrics_markdown(metrics: pd.DataFrame, timing: pd.DataFrame | None = None) -> str:
    """One section per dataset: a methods x metrics table, then the notes of NaN values."""
    return render_markdown("Metrics", METRICS_INTRO, metrics_sections(metrics, timing))


def ranking_markdown(ranking: pd.DataFrame) -> str:
    """One section per dataset: the methods by mean rank, per-metric ranks and timings."""
    return render_markdown("Ranking", RANKING_INTRO, ranking_sections(ranking))
