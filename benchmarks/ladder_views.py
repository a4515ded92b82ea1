"""Views of the scaling ladder's table for readers: the README's headline table
(``python benchmarks/ladder.py readme``) and ``ladder_variants.md`` (each setting for large data
beside its default; written by ``ladder_report.table``). Both are made from
``benchmarks/results/ladder.tsv``, never typed by hand.
"""

from __future__ import annotations

import ladder_setup as L  # the ladder's paths

#: The README's headline table (``python benchmarks/ladder.py readme``) sits between these lines.
README_START = (
    "<!-- headline table: made by `python benchmarks/ladder.py readme` from ladder.tsv -->"
)
README_END = "<!-- end of headline table -->"
#: The essay's own 1.3M costs, on its hardware (the last column of the headline table).
ESSAY_COST = {
    "tsne": "FIt-SNE 3 h, 256 GB node",
    "umap": "about 3 h",
    "ae_keras": "minutes",
    "ae_tf": "minutes",
    "scvis": "about 6 h",
}
#: The headline table's order: the essay's methods, the newer ones, then the controls.
HEADLINE_ORDER = (
    "pca", "tsne", "tsne_p350", "tsne_p350_lean", "tsne_exag", "umap", "ae_keras", "ae_tf",
    "scvis", "tsne_ae", "parametric_umap", "ae_citeseq", "pacmap", "trimap", "phate",
    "phate_lean", "densmap", "densmap_pca", "diffmap", "spectral", "spectral_lobpcg", "random",
    "true_features",
)  # fmt: skip


def headline_rows(ladder):
    """Per method, the largest rung's row the README shows: the current proxy's where it has a
    result (a number or a status), else the earlier proxy's."""
    top = ladder[(ladder["rung"] == ladder["rung"].max()) & (ladder["status"] != "not run yet")]
    top = top.sort_values("proxy_version", kind="stable")
    return top.drop_duplicates("method", keep="last").set_index("method")


def format_fit(seconds: float) -> str:
    text = f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s"
    return text + (f" ({seconds / 60:.0f} min)" if seconds >= 600 else "")


def short_status(status: str) -> str:
    """A status row's text, short enough for a table cell: "not run: 85 GiB by its memory
    model", "not run: predicted fit 3.98 h", "timeout after 100 min"."""
    import re

    if m := re.search(r"needs about ([\d.,e+]+) GiB by its memory model", status):
        return f"not run: {float(m.group(1).replace(',', '')):,.0f} GiB by its memory model"
    return re.sub(r"\s*\(.*", "", status)


def readme_table(ladder) -> list[str]:
    """The README's headline table: the largest rung's row of every method that has one."""
    import pandas as pd

    top = headline_rows(ladder)
    order = [m for m in HEADLINE_ORDER if m in top.index]
    order += sorted(m for m in top.index if m not in HEADLINE_ORDER)
    lines = [
        "| method | proxy | fit | peak memory | kNN acc. | KNC | CPD | kNN acc. (Leiden) | the essay |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in order:
        row = top.loc[m]
        peak = "" if pd.isna(row["peak_rss_mb"]) else f"{row['peak_rss_mb'] / 1000:.1f} GB"
        if row["status"] == "ok":
            fit = format_fit(row["fit_s"])
            scores = [row.get(c, float("nan")) for c in ("knn_accuracy", "knc", "cpd")]
            scores.append(row.get("knn_accuracy_leiden", float("nan")))
            cells = ["" if pd.isna(v) else f"{v:.3f}" for v in scores]
        else:
            fit, cells = short_status(row["status"]), [""] * 4
        cells = [
            f"`{m}`",
            f"v{int(row['proxy_version'])}",
            fit,
            peak,
            *cells,
            ESSAY_COST.get(m, ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def readme(path=None) -> None:
    """Rewrite the README's headline table from ``benchmarks/results/ladder.tsv``."""
    import pandas as pd

    path = path or L.ROOT / "README.md"
    text = path.read_text().splitlines()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{path}: the lines {README_START!r} and {README_END!r} are missing")
    start, end = text.index(README_START), text.index(README_END)
    ladder = pd.read_csv(L.RESULTS / "ladder.tsv", sep="\t", comment="#")
    table_lines = readme_table(ladder)
    path.write_text("\n".join(text[: start + 1] + table_lines + text[end:]) + "\n")
    print(f"{path}: headline table of {len(table_lines) - 2} methods")


#: The settings for large data beside the default each one changes: (default, setting, what
#: changes). ``ladder_variants.md`` puts their rows side by side at every rung with both.
VARIANTS = [
    ("tsne_p350", "tsne_p350_lean", "k = 350 and lean affinities instead of k = 1,050"),
    ("tsne_p350", "tsne_exag", "global structure by exaggeration 4 instead of perplexity 350"),
    ("tsne", "tsne_exag", "exaggeration 4 after the early phase"),
    ("phate", "phate_lean", "1,000 landmarks instead of 2,000, approximate kNN"),
    ("densmap", "densmap_pca", "PCA initialisation instead of the spectral embedding"),
    ("spectral", "spectral_lobpcg", "LOBPCG on an approximate kNN graph instead of ARPACK"),
]
VARIANT_COLUMNS = ("fit_s", "peak_rss_mb", "knn_accuracy", "knc", "cpd", "knn_accuracy_leiden")


def variants_table(rows, version: int) -> str:
    """Markdown: each setting for large data beside its default, rung by rung, on one proxy
    version (the same cells): fit, peak and quality of both, or the default's status."""
    import pandas as pd

    rows = rows[rows["proxy_version"] == version].set_index(["method", "rung"])
    out = []
    for default, setting, what in VARIANTS:
        lines = []
        for rung in sorted({r for m, r in rows.index if m == setting}):
            if (setting, rung) not in rows.index or (default, rung) not in rows.index:
                continue
            a, b = rows.loc[(default, rung)], rows.loc[(setting, rung)]
            if b["status"] != "ok":
                continue
            cells = [f"{rung:,}"]
            for col in VARIANT_COLUMNS:
                fmt = (
                    (lambda v: f"{v:,.0f}") if col in ("fit_s", "peak_rss_mb") else "{:.3f}".format
                )
                va = fmt(a[col]) if a["status"] == "ok" and pd.notna(a[col]) else ""
                vb = fmt(b[col]) if pd.notna(b[col]) else ""
                cells.append(f"{va} / {vb}" if a["status"] == "ok" else vb)
            if a["status"] != "ok":
                cells.append(f"`{default}`: {short_status(str(a['status']))}")
            else:
                cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
        if lines:
            out += [f"## `{setting}` against `{default}`: {what}", ""]
            out.append(
                "| rung | fit s | peak MB | kNN acc. | KNC | CPD | kNN acc. (Leiden) | note |"
            )
            out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
            out += lines + [""]
    return "\n".join(out)
