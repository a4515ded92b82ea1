"""README.md and docs/: a short README whose links resolve and whose tables match their sources.

The README is what a newcomer reads in five minutes; everything else lives in docs/. These tests
keep it short, keep every relative link (README and docs/) pointing at a file and heading that
exist, keep every docs/ page reachable from the README, and check the two tables the README
copies: the methods table against config.yaml, the 1.3M headline table against the ladder's
generated benchmarks/results/ladder.tsv, and keep every repository path the text names existing (the
library moved from scripts/ to src/scdrbench/; a stale path fails here).
"""

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

#: [text](target) and ![alt](target); target without spaces, optional "title" ignored.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
#: [label]: target (a reference definition at the start of a line).
REFERENCE_LINK = re.compile(r"^\[[^\]]+\]:\s+(\S+)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def markdown_files():
    return [README, *sorted(DOCS.glob("*.md"))]


def links(path):
    """Every link target of a Markdown file, code blocks left out."""
    text = FENCE.sub("", path.read_text())
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    text = FENCE.sub("", path.read_text())
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE)}


def table_rows(text, header_start):
    """The rows (lists of cells) of the Markdown table whose header line starts with header_start."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_readme_is_short():
    n_lines = len(README.read_text().splitlines())
    assert n_lines <= MAX_README_LINES, (
        f"README.md has {n_lines} lines, more than {MAX_README_LINES}: move the detail to docs/"
    )


def test_readme_links_every_docs_page():
    linked = {
        (README.parent / target.split("#")[0]).resolve()
        for target in links(README)
        if target.startswith("docs/")
    }
    pages = {page.resolve() for page in DOCS.glob("*.md")}
    assert pages, "docs/ has no pages"
    assert pages <= linked, f"docs/ pages the README does not link: {sorted(pages - linked)}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for target in links(path):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved.relative_to(ROOT)}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_slug_matches_github():
    assert slug("The project's jobs against the bare libraries") == (
        "the-projects-jobs-against-the-bare-libraries"
    )
    assert slug("Run times of `make demo`, and make test") == "run-times-of-make-demo-and-make-test"


def test_methods_table_matches_config():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    methods = config["methods"]
    rows = table_rows(README.read_text(), "| id | label | family | reference |")
    ids = [row[0].strip("`") for row in rows]
    assert len(ids) == len(set(ids)), "a method id appears twice in the README's table"
    assert set(ids) == set(config["selection"]["methods"]), (
        "the README's table lists the paper run's selection (config.yaml selection.methods)"
    )
    for method_id, label, family, reference in rows:
        entry = methods[method_id.strip("`")]
        assert label == entry["label"], method_id
        assert family == entry["family"], method_id
        expected = entry["reference"].removeprefix("doi:")
        if expected.startswith("https://towardsdatascience.com"):
            expected = "[the essay][essay]"
        assert expected in reference, f"{method_id}: reference {expected!r} not in {reference!r}"


def test_headline_table_is_the_generated_one():
    """The README's headline table is `python benchmarks/ladder.py readme`'s output from the
    committed ladder.tsv: a new 1.3M row without regenerating it fails here."""
    import ladder_views

    ladder = pd.read_csv(ROOT / "benchmarks/results/ladder.tsv", sep="\t", comment="#")
    lines = README.read_text().splitlines()
    start = lines.index(ladder_views.README_START)
    end = lines.index(ladder_views.README_END)
    assert lines[start + 1 : end] == ladder_views.readme_table(ladder), (
        "run `python benchmarks/ladder.py readme`"
    )


@pytest.mark.parametrize(
    "status, short",
    [
        (
            "not run: tsne_p350 (1,306,127 cells) needs about 85.1 GiB by its memory model "
            "(src/scdrbench/methods/tsne.py), more than its budget 22 GiB",
            "not run: 85 GiB by its memory model",
        ),
        (
            "not run: spectral (1,306,127 cells) needs about 1.66e+03 GiB by its memory model",
            "not run: 1,660 GiB by its memory model",
        ),
        (
            "not run: predicted fit 3.98 h (n^1.42 from 3 rungs), over 2 x its budget 100 min",
            "not run: predicted fit 3.98 h",
        ),
        ("timeout after 100 min", "timeout after 100 min"),
    ],
)
def test_headline_status_cells_are_short(status, short):
    from ladder_views import short_status

    assert short_status(status) == short


def test_headline_table_matches_ladder():
    """Independently of the generator: each row's cells are the ladder's numbers."""
    from ladder_views import format_fit, headline_rows

    ladder = pd.read_csv(ROOT / "benchmarks/results/ladder.tsv", sep="\t", comment="#")
    at_target = headline_rows(ladder)
    rows = table_rows(README.read_text(), "| method | proxy | fit | peak memory |")
    assert len(rows) >= 8
    for method_cell, proxy, fit, peak, knn_acc, knc, cpd, leiden, _essay in rows:
        row = at_target.loc[method_cell.strip("`")]
        assert proxy == f"v{row['proxy_version']}", method_cell
        if row["status"] != "ok":  # "not run: ...", "timeout after ...": its status, no scores
            assert fit.split()[:2] == row["status"].split()[:2] or (
                fit.split()[0] == row["status"].split()[0] == "timeout"
            ), method_cell
            if peak:
                assert peak == f"{row['peak_rss_mb'] / 1000:.1f} GB", method_cell
            assert knn_acc == knc == cpd == leiden == "", method_cell
            continue
        assert fit == format_fit(row["fit_s"]), method_cell
        assert peak == f"{row['peak_rss_mb'] / 1000:.1f} GB", method_cell
        cells = ((knn_acc, "knn_accuracy"), (knc, "knc"), (cpd, "cpd"))
        cells += ((leiden, "knn_accuracy_leiden"),)
        for cell, column in cells:
            value = row.get(column, float("nan"))
            want = "" if pd.isna(value) else f"{value:.3f}"
            assert cell == want, f"{method_cell} {column}"


#: A repository path in backticks, e.g. `src/scdrbench/common/keep.py` or `tests/test_slurm.py`.
NAMED_PATH = re.compile(
    r"(?:^|[\s(])((?:src|scripts|tests|benchmarks|rules|profiles|envs)/[\w./{}<>*,-]*)"
)


#: Outputs the docs name before the command that writes them has run on the committed tree.
NOT_YET_WRITTEN = {"benchmarks/results/paper_run/": "make paper (the 1.3M paper run, hours)"}


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(path):
    """A file or folder the text names in backticks exists (patterns with {, < or * are skipped)."""
    missing = []
    for code in re.findall(r"`([^`\n]+)`", path.read_text()):
        for named in NAMED_PATH.findall(code):
            named = named.split(":")[0].rstrip(".,")
            if named in NOT_YET_WRITTEN and not (ROOT / named).exists():
                continue
            if not any(c in named for c in "{<*") and not (ROOT / named).exists():
                missing.append(named)
    assert not missing, f"{path.relative_to(ROOT)} names paths that do not exist: {missing}"
