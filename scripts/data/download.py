"""Download one file to ``results/downloads/{dataset}/``: atomic, with a clear offline error."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from scripts.common.errors import ScdrbenchError, cli_errors
from scripts.common.runtime import setup_logging

log = logging.getLogger("scdrbench.download")

USER_AGENT = "scdrbench/0.1 (+https://github.com/scdrbench; python-requests)"


def offline_message(url: str, output: str, dataset: str, err: Exception) -> str:
    """The one-line error: the address, the reason and where to put a local copy."""
    return (
        f"cannot download {url} ({type(err).__name__}: {err}). Either copy the file to "
        f"{output} and re-run, or set datasets.{dataset}.path (or adt_path) in your config to a "
        "local copy"
    )


def download(url: str, output: str, *, dataset: str, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``output`` via ``output.part``, renamed on completion."""
    import requests

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        with requests.get(
            url, stream=True, timeout=timeout, headers={"User-Agent": USER_AGENT}
        ) as resp:
            resp.raise_for_status()
            with open(part, "wb") as fh:
                for block in resp.iter_content(chunk_size=1 << 20):
                    fh.write(block)
    except (requests.RequestException, OSError) as err:
        raise ScdrbenchError(offline_message(url, output, dataset, err)) from None
    os.replace(part, out)
    log.info("downloaded %s (%d bytes)", output, out.stat().st_size)


@cli_errors
def cli(argv=None) -> None:
    p = argparse.ArgumentParser(description="Download a data set file")
    p.add_argument("--url", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--log")
    a = p.parse_args(argv)
    setup_logging(a.log)
    download(a.url, a.output, dataset=a.dataset)


if __name__ == "__main__":
    cli()
