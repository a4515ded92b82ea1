"""Do two demo runs give the same results? Embeddings and scores compared file by file.

    python benchmarks/demo_identity.py BEFORE/results AFTER/results --label-before 828c855 \\
        --label-after HEAD [--md benchmarks/results/demo_identity.md]

Compares, for every file both runs have:
- results/embed/<dataset>/<method>.h5ad: the embedding (``obsm['X_emb']``, bytes and dtype),
  the cell labels and the job's status (timings, hosts and versions in ``uns`` are left out);
- results/metrics/<dataset>/<method>.tsv: every row (metric, value, cells scored, note);
- results/stability/<dataset>/<method>.tsv: every agreement value;
- results/tables/metrics.tsv (when both have it).
A file only one run has is listed as missing. Exits 1 when anything differs, so it serves as
the recorded check that a refactor changed no result (issue 24).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import platform
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

# Columns (or stability metrics) that are measurements of the run, not results.
TIMING_COLUMNS = ("fit_seconds", "cpu_seconds", "peak_rss_mb", "seconds", "max_rss_mb", "host")


def embedding_digest(path: Path) -> str:
    """sha256 of the embedding's dtype, shape and bytes, the labels and the status."""
    adata = ad.read_h5ad(path)
    h = hashlib.sha256()
    emb = np.ascontiguousarray(adata.obsm["X_emb"]) if "X_emb" in adata.obsm else np.empty(0)
    h.update(f"{emb.dtype}{emb.shape}".encode())
    h.update(emb.tobytes())
    if "label" in adata.obs:
        h.update("\n".join(map(str, adata.obs["label"])).encode())
    h.update(str(adata.uns.get("status", "")).encode())
    return h.hexdigest()


def table_digest(path: Path, drop: tuple[str, ...] = ()) -> str:
    """sha256 of a TSV's rows, as text, without the columns in ``drop`` and without the rows
    whose ``metric`` is a timing (the stability files record each run's fit_seconds)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    if "metric" in frame.columns:
        frame = frame[~frame["metric"].isin(TIMING_COLUMNS)]
    return hashlib.sha256(frame.to_csv(sep="\t", index=False).encode()).hexdigest()


def fingerprints(results: Path) -> dict[str, str]:
    """``relative path -> digest`` of every compared file under one results/ folder."""
    out: dict[str, str] = {}
    for path in sorted(results.glob("embed/*/*.h5ad")):
        out[str(path.relative_to(results))] = embedding_digest(path)
    for sub in ("metrics", "stability"):
        for path in sorted(results.glob(f"{sub}/*/*.tsv")):
            out[str(path.relative_to(results))] = table_digest(path)
    table = results / "tables" / "metrics.tsv"
    if table.exists():
        out["tables/metrics.tsv"] = table_digest(table, TIMING_COLUMNS)
    return out


def compare(before: dict[str, str], after: dict[str, str]) -> pd.DataFrame:
    rows = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        verdict = "missing" if a is None or b is None else ("identical" if a == b else "DIFFERS")
        rows.append(
            {"file": name, "before": (a or "-")[:12], "after": (b or "-")[:12], "result": verdict}
        )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path, help="the first run's results/ folder")
    p.add_argument("after", type=Path, help="the second run's results/ folder")
    p.add_argument("--label-before", default="before")
    p.add_argument("--label-after", default="after")
    p.add_argument("--md", type=Path, help="write the comparison here (Markdown)")
    args = p.parse_args(argv)
    for folder in (args.before, args.after):
        if not (folder / "embed").is_dir():
            print(
                f"scdrbench error: {folder} has no embed/ folder: give a demo's results/",
                file=sys.stderr,
            )
            return 2
    table = compare(fingerprints(args.before), fingerprints(args.after))
    counts = table["result"].value_counts().to_dict()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"{len(table)} files: {summary}")
    for row in table[table["result"] != "identical"].itertuples():
        print(f"  {row.result}: {row.file}")
    if args.md:
        head = [
            "> Demo results before and after a change, file by file (benchmarks/demo_identity.py)  ",
            f"> date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  ",
            f"> machine: {platform.machine()}, {platform.system()}, python {platform.python_version()}  ",
            f"> before: {args.label_before} ({args.before}); after: {args.label_after} ({args.after})  ",
            f"> command: python benchmarks/demo_identity.py {args.before} {args.after} "
            f"--label-before {args.label_before} --label-after {args.label_after} --md {args.md}  ",
            "> compared: embeddings (obsm X_emb bytes and dtype, labels, status), every score "
            "row, every stability agreement, tables/metrics.tsv without its timing columns",
            "",
            f"**{len(table)} files: {summary}.**",
            "",
            table.to_markdown(index=False),
            "",
        ]
        args.md.write_text("\n".join(head))
    return 0 if set(counts) == {"identical"} else 1


if __name__ == "__main__":
    sys.exit(main())
