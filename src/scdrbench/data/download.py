"""Download one file to ``results/downloads/{dataset}/``: resumable, atomic, verified.

- Resumable, and only onto the same file: the validator of a partial download (the server's
  ``ETag``, else its ``Last-Modified``) is kept beside it in ``<output>.part.json``; the rest is
  asked for with ``Range`` and ``If-Range`` (that validator), and appended only when the reply is
  a 206 whose ``Content-Range`` starts at the offset asked for. A 200 (the file changed on the
  server, or the server ignores ranges) replaces the partial file; a 206 at another offset, or a
  partial file without a validator, starts again from zero.
- Atomic: the file appears under its final name only once complete and verified.
- Verified by every means available: the expected ``size``, ``sha256`` and ``md5`` from the
  registry when given (both checksums when both are given), the server's ``Content-Length``, and the file must be whole as what its name says: a
  gzip stream read to its end (CRC and length), an HDF5 file that opens and, for a Cell Ranger
  matrix, whose arrays agree with its shape, a CSV whose rows all have the header's number of
  fields and whose last line is complete.
- Locked: the first verified download records its size and sha256 in ``<output>.lock.json``;
  the prepare step checks the file against it on every later run (a file replaced or damaged
  after it was verified is an error naming it).
- Progress in the log every ~5% (or 100 MB when the size is unknown).
- Offline or failing: one line naming the address and where to put a local copy.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
from pathlib import Path

from scdrbench.common.errors import ScdrbenchError, cli_errors
from scdrbench.common.io import sha256sum
from scdrbench.common.runtime import setup_logging
from scdrbench.data.filecheck import BLOCK, check_csv, check_opens, check_tenx

log = logging.getLogger("scdrbench.download")

USER_AGENT = "scdrbench/0.1 (+https://github.com/scdrbench; python-requests)"


def offline_message(url: str, output: str, dataset: str, err: Exception) -> str:
    """The one-line error: the address, the reason and where to put a local copy."""
    return (
        f"cannot download {url} ({type(err).__name__}: {err}). Either copy the file to "
        f"{output} and re-run, or set datasets.{dataset}.path (or adt_path) in your config to a "
        "local copy"
    )


def lock_path(output: str | Path) -> Path:
    """Where the first verified download's size and sha256 are kept."""
    return Path(str(output) + ".lock.json")


def write_lock(output: str | Path, url: str) -> dict:
    import json

    from scdrbench.common.io import write_text

    record = {"url": url, "size": Path(output).stat().st_size, "sha256": sha256sum(output)}
    write_text(json.dumps(record, indent=1) + "\n", lock_path(output))
    return record


def check_lock(path: str | Path) -> None:
    """A downloaded file must still be the one that was verified (its lock file's size and
    sha256); nothing to check for a file without a lock (a local copy)."""
    import json

    lock = lock_path(path)
    if not lock.exists():
        return
    record = json.loads(lock.read_text())
    size = Path(path).stat().st_size
    if size != record["size"] or sha256sum(path) != record["sha256"]:
        raise ScdrbenchError(
            f"{path}: changed since it was downloaded and verified (sha256 and size in {lock}); "
            "delete both files and re-run to download it again"
        )


def verify(
    path: str | Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    name=None,
    key: str = "datasets.<id>",
):
    """Check size, checksums and that the file opens; a mismatch raises with both values and the
    config key (``key``: the data set's entry, e.g. ``datasets.mouse_brain_1m``)."""
    path = Path(path)
    name = name or path.name
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise ScdrbenchError(
            f"{name}: size {actual} bytes, expected {size} ({key}.size); the download is "
            "incomplete or the file changed upstream: delete it and re-run"
        )
    expected = {k: v.lower() for k, v in (("sha256", sha256), ("md5", md5)) if v}
    if expected:
        got = digests(path, tuple(expected))
        for algo, want in expected.items():
            if got[algo] != want:
                raise ScdrbenchError(
                    f"{name}: {algo} {got[algo]} does not match the expected {want} "
                    f"({key}.{algo}): the file is damaged or changed upstream; delete it and "
                    f"re-run, or update {key}.{algo} if the new file is intended"
                )
    check_opens(path, name=name)
    if ".csv" in name:
        check_csv(path, name=name)
    if name.endswith((".h5", ".hdf5")):
        check_tenx(path, name=name)


def digests(path: str | Path, algos: tuple[str, ...]) -> dict[str, str]:
    """Hex digests of a file (``hashlib`` names, e.g. sha256 and md5), in one read."""
    hashes = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def validator_path(output: str | Path) -> Path:
    """Where the validator (ETag, Last-Modified) of ``<output>.part`` is kept between runs."""
    return Path(str(output) + ".part.json")


def _validator(headers) -> dict:
    """The reply's validators usable in If-Range: a strong ETag, a Last-Modified date."""
    etag = headers.get("ETag")
    record = {"etag": etag} if etag and not etag.startswith("W/") else {}
    if headers.get("Last-Modified"):
        record["last_modified"] = headers["Last-Modified"]
    return record


def _content_range(headers) -> tuple[int | None, int | None, int | None]:
    """``Content-Range: bytes START-END/TOTAL`` (or ``bytes */TOTAL``) as numbers, None where
    absent or ``*``."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", headers.get("Content-Range", ""))
    if not m:
        return None, None, None
    return tuple(int(x) if x and x != "*" else None for x in m.groups())


def _discard(part: Path, meta: Path) -> None:
    part.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)


def _kept_part(part: Path, meta: Path, url: str, size: int | None) -> tuple[int, dict]:
    """Bytes of the partial download that may be resumed, and their validator; a partial file
    that cannot be shown to be the same file (no validator, another address) is discarded."""
    import json

    have = part.stat().st_size if part.exists() else 0
    if not have:
        meta.unlink(missing_ok=True)
        return 0, {}
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        record = {}
    validator = _validator(
        {"ETag": record.get("etag"), "Last-Modified": record.get("last_modified")}
    )
    if size is not None and have > size:
        log.warning("%s is larger than the expected size; starting again", part)
    elif record.get("url") != url or not validator:
        log.warning(
            "%s: no ETag or Last-Modified of %s recorded for it (%s), so it cannot be shown to "
            "be the same file; starting again",
            part,
            url,
            meta,
        )
    else:
        return have, validator
    _discard(part, meta)
    return 0, {}


def download(
    url: str,
    output: str,
    *,
    dataset: str,
    size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 30.0,
) -> None:
    """Fetch ``url`` into ``output`` via ``output.part`` (resumed if it is the same file), then
    verify."""
    import requests

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    meta = validator_path(out)
    have, validator = _kept_part(part, meta, url, size)
    try:
        # a second request only after a partial file was discarded: it asks for the whole file
        while (size is None or have < size) and _fetch(
            url, out, part, meta, have, validator, timeout
        ):
            have, validator = 0, {}
    except requests.RequestException as err:
        kept = part.stat().st_size if part.exists() and meta.exists() else 0
        resume = f"; a re-run resumes from the {kept} bytes kept in {part}" if kept else ""
        raise ScdrbenchError(offline_message(url, output, dataset, err) + resume) from None
    except OSError as err:
        raise ScdrbenchError(f"cannot write {part}: {err}") from None
    try:
        verify(part, size=size, sha256=sha256, md5=md5, name=out.name, key=f"datasets.{dataset}")
    except ScdrbenchError as err:
        _discard(part, meta)  # a corrupt partial file must not be resumed
        # the advice of the file checks is for a file the user has; this one is gone already
        text = str(err).replace(
            "delete it and re-run", "it was removed: re-run to download it again"
        )
        raise ScdrbenchError(text) from None
    os.replace(part, out)
    meta.unlink(missing_ok=True)
    record = write_lock(out, url)
    log.info(
        "downloaded and verified %s (%d bytes, sha256 %s; recorded in %s)",
        output,
        record["size"],
        record["sha256"],
        lock_path(out),
    )


def _fetch(
    url: str, out: Path, part: Path, meta: Path, have: int, validator: dict, timeout: float
) -> bool:
    """One request: the rest of the file after ``have`` bytes (Range, If-Range ``validator``),
    or all of it. True when the partial file had to be discarded (ask again from zero)."""
    import json

    import requests

    from scdrbench.common.io import write_text

    # identity: Range offsets count the bytes as stored, not a compressed transfer
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        headers["If-Range"] = validator.get("etag") or validator["last_modified"]
    with requests.get(url, stream=True, timeout=timeout, headers=headers) as resp:
        start, end, total = _content_range(resp.headers)
        if resp.status_code == 416 and have:
            if total in (None, have):
                log.info("server says %s is already complete (%d bytes)", part, have)
                return False
            log.warning(
                "%s: the server cannot serve bytes from %d of a file of %d bytes; starting again",
                url,
                have,
                total,
            )
            _discard(part, meta)
            return True
        resp.raise_for_status()
        if resp.status_code == 206:
            etag = _validator(resp.headers).get("etag")
            if start != have or (have and etag and etag != validator.get("etag", etag)):
                what = (
                    f"bytes {start}-{end}/{total}"
                    if start is not None
                    else f"Content-Range '{resp.headers.get('Content-Range')}'"
                )
                if not have:
                    raise ScdrbenchError(
                        f"{url}: the server answered a part of the file ({what}) to a request for "
                        "all of it; download it by other means, copy it to "
                        f"{out} and re-run"
                    )
                log.warning(
                    "%s: asked for bytes from %d (If-Range %s), the server answered %s%s; the "
                    "partial file is not resumed, starting again",
                    url,
                    have,
                    headers["If-Range"],
                    what,
                    f" of ETag {etag}" if etag and etag != validator.get("etag", etag) else "",
                )
                _discard(part, meta)
                return True
            if have:
                log.info("resuming %s at %d bytes (If-Range %s)", url, have, headers["If-Range"])
            mode = "ab" if have else "wb"
        else:
            if have:
                log.info(
                    "%s changed on the server since the partial download, or the server ignores "
                    "ranges (status %d to If-Range %s): starting again",
                    url,
                    resp.status_code,
                    headers["If-Range"],
                )
            have, mode, total = 0, "wb", None
        if mode == "wb":  # a new file: its validator, recorded before the first byte is written
            new = _validator(resp.headers)
            if new:
                write_text(json.dumps({"url": url, **new}, indent=1) + "\n", meta)
            else:
                meta.unlink(missing_ok=True)
        length = resp.headers.get("Content-Length")
        expected = total or (have + int(length) if length else None)
        _stream(resp, part, mode, have, expected, url)
        _check_complete(resp, out, part, meta, have, total)
    return False


def _check_complete(resp, out: Path, part: Path, meta: Path, have: int, total) -> None:
    """The partial file holds every byte the server announced (Content-Length after ``have``,
    Content-Range's total), else a ScdrbenchError that says re-running resumes it."""
    length = resp.headers.get("Content-Length")
    got = part.stat().st_size
    plain = resp.headers.get("Content-Encoding", "identity") == "identity"
    again = "resume" if meta.exists() else "download it again"
    if length is not None and plain and got != have + int(length):
        raise ScdrbenchError(
            f"{out.name}: received {got - have} of the {length} bytes the server "
            f"announced (Content-Length); the transfer was cut: re-run to {again}"
        )
    if total is not None and got != total:
        raise ScdrbenchError(
            f"{out.name}: {got} of the {total} bytes the server announced (Content-Range); "
            f"the transfer was cut: re-run to {again}"
        )


def _stream(resp, part: Path, mode: str, have: int, total: int | None, url: str) -> None:
    step = max(total // 20, BLOCK) if total else 100 * BLOCK
    next_report = have + step
    with open(part, mode) as fh:
        for block in resp.iter_content(chunk_size=BLOCK):
            fh.write(block)
            have += len(block)
            if have >= next_report:
                if total:
                    log.info(
                        "%s: %d of %d MB (%.0f%%)", url, have >> 20, total >> 20, 100 * have / total
                    )
                else:
                    log.info("%s: %d MB", url, have >> 20)
                next_report += step


@cli_errors
def cli(argv=None) -> None:
    p = argparse.ArgumentParser(description="Download a data set file")
    p.add_argument("--url", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--size", type=int, default=None, help="expected size in bytes")
    p.add_argument("--sha256", default=None, help="expected SHA-256 (hex)")
    p.add_argument("--md5", default=None, help="expected MD5 (hex); both are checked if given")
    p.add_argument("--log")
    a = p.parse_args(argv)
    setup_logging(a.log)
    download(
        a.url,
        a.output,
        dataset=a.dataset,
        size=a.size,
        sha256=a.sha256 or None,
        md5=a.md5 or None,
    )


if __name__ == "__main__":
    cli()
