"""Downloads against a local HTTP server (127.0.0.1, with Range support): never the network."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import threading
from email.utils import formatdate
from pathlib import Path

import pytest

from scdrbench.common.errors import ScdrbenchError
from scdrbench.data.download import download
from tests.conftest import ROOT

PAYLOAD = gzip.compress(b"".join(b"gene%d,1,2,3\n" % i for i in range(20000)))
BIG = random.Random(0).randbytes(3 << 20)  # 3 MiB: more than one of the downloader's blocks


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root`` as a real file server does: ``ETag`` and ``Last-Modified``,
    ``Range: bytes=N-`` honoured unless ``If-Range`` names another version. Counts requests
    (their Range header in ``requests``, their If-Range in ``if_ranges`` when the handler has
    one). Faults, set on the server: ``honour_range`` False (always 200), ``validators`` (those
    sent, of "etag", "last_modified"), ``honour_if_range`` False (206 whatever If-Range says),
    ``range_shift`` (the 206 starts this many bytes before the offset asked for), ``cut_after``
    (announce the whole body but send only this many bytes, once)."""

    root: Path
    requests: list

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        self.requests.append(rng)
        if hasattr(self, "if_ranges"):
            self.if_ranges.append(self.headers.get("If-Range"))
        server = self.server
        sent = getattr(server, "validators", ("etag", "last_modified"))
        validators = {
            "etag": f'"{hashlib.sha256(data).hexdigest()[:16]}"',
            "last_modified": formatdate(path.stat().st_mtime, usegmt=True),
        }
        validators = {k: v for k, v in validators.items() if k in sent}
        if_range = self.headers.get("If-Range")
        same = if_range is None or if_range in validators.values()
        if (
            rng
            and getattr(server, "honour_range", True)
            and (same or not getattr(server, "honour_if_range", True))
        ):
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            start = max(start - getattr(server, "range_shift", 0), 0)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        if "etag" in validators:
            self.send_header("ETag", validators["etag"])
        if "last_modified" in validators:
            self.send_header("Last-Modified", validators["last_modified"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut, server.cut_after = getattr(server, "cut_after", None), None
        self.wfile.write(body if cut is None else body[:cut])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "data.csv.gz").write_bytes(PAYLOAD)
    (root / "big.bin").write_bytes(BIG)
    handler = type("H", (RangeHandler,), {"root": root, "requests": [], "if_ranges": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_download_verified(server, tmp_path):
    _, base, _ = server
    out = tmp_path / "dl" / "data.csv.gz"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    download(f"{base}/data.csv.gz", str(out), dataset="x", size=len(PAYLOAD), sha256=sha)
    assert out.read_bytes() == PAYLOAD
    assert not out.with_name("data.csv.gz.part").exists()


def _cut_first_attempt(httpd, base, out, name="big.bin"):
    """A first download whose transfer is cut after 1.5 MiB: a partial file is left (the
    downloader writes whole 1 MiB blocks) and the error is one line."""
    httpd.cut_after = 3 << 19
    # urllib3 2 stops at the short body (IncompleteRead); without that, the Content-Length check
    with pytest.raises(
        ScdrbenchError, match=f"cannot download {base}/{name}|{name}: received"
    ) as err:
        download(f"{base}/{name}", str(out), dataset="x")
    assert "\n" not in str(err.value)
    part = out.with_name(out.name + ".part")
    assert 0 < part.stat().st_size < len(BIG)
    if getattr(httpd, "validators", True):  # a validator was recorded: the next run resumes
        assert "re-run to resume" in str(err.value) or (
            f"a re-run resumes from the {part.stat().st_size} bytes kept in {part}"
            in str(err.value)
        )
    assert not out.exists()
    return part.stat().st_size


def test_cut_download_resumes_with_range_and_if_range(server, tmp_path):
    httpd, base, handler = server
    out = tmp_path / "big.bin"
    have = _cut_first_attempt(httpd, base, out)
    meta = json.loads((tmp_path / "big.bin.part.json").read_text())
    assert meta["url"] == f"{base}/big.bin" and meta["etag"].startswith('"')
    download(f"{base}/big.bin", str(out), dataset="x", size=len(BIG))
    assert handler.requests == [None, f"bytes={have}-"]
    assert handler.if_ranges == [None, meta["etag"]]  # the ETag, the stronger validator
    assert out.read_bytes() == BIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin", "big.bin.lock.json", "srv"]


def test_wrong_content_range_start_is_not_appended(server, tmp_path, caplog):
    """A 206 that starts before the offset asked for would duplicate bytes if appended: the
    partial file is dropped and the whole file fetched again, in the same run."""
    httpd, base, handler = server
    out = tmp_path / "big.bin"
    have = _cut_first_attempt(httpd, base, out)
    httpd.range_shift = 100
    download(f"{base}/big.bin", str(out), dataset="x")
    assert handler.requests == [None, f"bytes={have}-", None]
    assert out.read_bytes() == BIG
    assert f"answered bytes {have - 100}-{len(BIG) - 1}/{len(BIG)}" in caplog.text


@pytest.mark.parametrize("validators", [("etag", "last_modified"), ("last_modified",)])
def test_file_changed_between_attempts_replaces_the_partial(server, tmp_path, validators):
    """Same size, other bytes: If-Range (ETag, else Last-Modified) fails, the server answers 200
    with the new file, and that replaces the partial one instead of being appended."""
    httpd, base, handler = server
    httpd.validators = validators
    out = tmp_path / "big.bin"
    have = _cut_first_attempt(httpd, base, out)
    sent = json.loads((tmp_path / "big.bin.part.json").read_text())
    assert ("etag" in sent) == ("etag" in validators) and "last_modified" in sent
    served = handler.root / "big.bin"
    new = BIG[::-1]
    served.write_bytes(new)
    os.utime(served, (served.stat().st_mtime + 60,) * 2)  # a later Last-Modified
    download(f"{base}/big.bin", str(out), dataset="x", size=len(new))
    assert handler.requests == [None, f"bytes={have}-"]
    assert handler.if_ranges[-1] == sent.get("etag", sent["last_modified"])
    assert out.read_bytes() == new
    assert not (tmp_path / "big.bin.part.json").exists()


def test_server_ignoring_if_range_is_caught_by_its_etag(server, tmp_path, caplog):
    """A server that answers 206 although the file changed: the reply's new ETag gives it away;
    the partial file is dropped, not completed with another file's bytes."""
    httpd, base, handler = server
    out = tmp_path / "big.bin"
    have = _cut_first_attempt(httpd, base, out)
    (handler.root / "big.bin").write_bytes(BIG[::-1])
    httpd.honour_if_range = False
    download(f"{base}/big.bin", str(out), dataset="x")
    assert handler.requests == [None, f"bytes={have}-", None]
    assert out.read_bytes() == BIG[::-1]
    assert "the partial file is not resumed, starting again" in caplog.text


def test_no_validator_means_no_blind_resume(server, tmp_path, caplog):
    """Without ETag or Last-Modified nothing shows the partial file is of the same file: it is
    not resumed, the file is fetched from the start (also for a partial file that has none)."""
    httpd, base, handler = server
    httpd.validators = ()
    out = tmp_path / "big.bin"
    _cut_first_attempt(httpd, base, out)
    assert not (tmp_path / "big.bin.part.json").exists()
    download(f"{base}/big.bin", str(out), dataset="x", size=len(BIG))
    assert handler.requests == [None, None]
    assert out.read_bytes() == BIG
    assert "cannot be shown to be the same file; starting again" in caplog.text
    (tmp_path / "data.csv.gz.part").write_bytes(PAYLOAD[:1000])  # left by an older version
    download(f"{base}/data.csv.gz", str(tmp_path / "data.csv.gz"), dataset="x")
    assert handler.requests[-1] is None
    assert (tmp_path / "data.csv.gz").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts(server, tmp_path):
    httpd, base, _ = server
    httpd.honour_range = False
    out = tmp_path / "data.csv.gz"
    (tmp_path / "data.csv.gz.part").write_bytes(b"garbage")
    download(f"{base}/data.csv.gz", str(out), dataset="x")
    assert out.read_bytes() == PAYLOAD


def test_checksum_mismatch(server, tmp_path):
    _, base, _ = server
    out = tmp_path / "data.csv.gz"
    with pytest.raises(ScdrbenchError, match="data.csv.gz: sha256 .* does not match"):
        download(f"{base}/data.csv.gz", str(out), dataset="x", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == [tmp_path / "srv"]  # nothing left, not even .part


def test_size_mismatch(server, tmp_path):
    _, base, _ = server
    with pytest.raises(ScdrbenchError, match="expected"):
        download(
            f"{base}/data.csv.gz", str(tmp_path / "d.csv.gz"), dataset="x", size=len(PAYLOAD) + 5
        )


def test_md5_match_and_mismatch(server, tmp_path):
    """md5 beside sha256: a match is accepted; a mismatch is one line naming the file, both
    values and the config key, and leaves nothing the workflow could take as done. With both
    checksums given, both must match."""
    _, base, _ = server
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    out = tmp_path / "dl" / "data.csv.gz"
    download(f"{base}/data.csv.gz", str(out), dataset="x", md5=md5, sha256=sha)
    assert out.read_bytes() == PAYLOAD
    bad = tmp_path / "bad" / "data.csv.gz"
    for kwargs in ({"md5": "0" * 32}, {"md5": "0" * 32, "sha256": sha}):
        with pytest.raises(ScdrbenchError) as err:
            download(f"{base}/data.csv.gz", str(bad), dataset="mouse", **kwargs)
        assert str(err.value) == (
            f"data.csv.gz: md5 {md5} does not match the expected {'0' * 32} "
            "(datasets.mouse.md5): the file is damaged or changed upstream; it was removed: "
            "re-run to download it again, or update datasets.mouse.md5 if the new file is intended"
        )
        assert list(bad.parent.iterdir()) == []  # no file, no .part, no .part.json, no lock
    with pytest.raises(ScdrbenchError, match=r"data.csv.gz: sha256 .* \(datasets.mouse.sha256\)"):
        download(f"{base}/data.csv.gz", str(bad), dataset="mouse", md5=md5, sha256="0" * 64)


def test_cli_checksum_error_is_one_line_on_console_and_in_the_log(server, tmp_path):
    _, base, _ = server
    log = tmp_path / "download.log"
    out = tmp_path / "data.csv.gz"
    proc = subprocess.run(
        [sys.executable, "-m", "scdrbench.data.download", "--url", f"{base}/data.csv.gz"]
        + ["--output", str(out), "--dataset", "mouse", "--md5", "1" * 32, "--log", str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    # the same line echoed as a warning first is w-oserr's item (issue 26: once, not as a warning)
    lines = [
        x
        for x in proc.stderr.strip().splitlines()
        if not x.startswith("scdrbench warning: scdrbench error: data.csv.gz: md5 ")
    ]
    assert len(lines) == 1 and lines[0].startswith("scdrbench error: data.csv.gz: md5 ")
    assert "(datasets.mouse.md5)" in lines[0] and "Traceback" not in proc.stderr
    assert lines[0].split(" (log: ")[0] in log.read_text()
    assert not out.exists()


@pytest.mark.workflow
def test_md5_in_the_config_schema_and_on_the_download_command(tmp_path):
    import yaml

    from scdrbench.common.config import ConfigError, validate_config
    from tests.test_workflow import run_snakemake

    with open(ROOT / "config.yaml") as fh:
        config = yaml.safe_load(fh)
    assert config["datasets"]["mouse_brain_1m"]["md5"] == "f97b8c67e57a534816b9b2bccf31476b"
    config["datasets"]["mouse_brain_1m"]["md5"] = "F97B8C67"
    with pytest.raises(ConfigError, match=r"datasets\.mouse_brain_1m\.md5"):
        validate_config(config)
    target = "results/downloads/mouse_brain_1m/1M_neurons_filtered_gene_bc_matrices_h5.h5"
    proc = run_snakemake("-n", "-p", "--cores", "1", "--directory", str(tmp_path), target)
    assert "--md5 f97b8c67e57a534816b9b2bccf31476b --log" in proc.stdout


def test_truncated_gzip_download(server, tmp_path):
    _, base, handler = server
    (handler.root / "cut.csv.gz").write_bytes(PAYLOAD[: len(PAYLOAD) // 2])
    out = tmp_path / "cut.csv.gz"
    with pytest.raises(ScdrbenchError, match="cut.csv.gz: not a complete gzip file"):
        download(f"{base}/cut.csv.gz", str(out), dataset="x")
    assert not out.exists()


def test_offline_error_names_address_and_local_copy(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/GSE100866_x.csv.gz"
    out = tmp_path / "GSE100866_x.csv.gz"
    with pytest.raises(ScdrbenchError) as err:
        download(url, str(out), dataset="cbmc", timeout=2)
    msg = str(err.value)
    assert url in msg and str(out) in msg and "datasets.cbmc.path" in msg
    assert "\n" not in msg
    assert not out.exists()


def test_http_404_is_clear(server, tmp_path):
    _, base, _ = server
    with pytest.raises(ScdrbenchError, match="cannot download .*missing.h5"):
        download(f"{base}/missing.h5", str(tmp_path / "missing.h5"), dataset="x")


def test_cut_csv_without_size_or_checksum_is_refused(server, tmp_path):
    """No size, no sha256, a Content-Length that matches the cut body: the CSV itself tells."""
    _, base, handler = server
    text = b"".join(b"gene%d,1,2,3\n" % i for i in range(400))
    (handler.root / "cut.csv").write_bytes(text[: len(text) // 2 + 3])  # mid-row
    with pytest.raises(ScdrbenchError, match="cut.csv: .*the download was cut|cut.csv: row"):
        download(f"{base}/cut.csv", str(tmp_path / "cut.csv"), dataset="x")
    (handler.root / "ragged.csv").write_bytes(b"gene,a,b\ng1,1,2\ng2,1\n")
    with pytest.raises(ScdrbenchError, match="ragged.csv: row 3 has 2 fields, the header 3"):
        download(f"{base}/ragged.csv", str(tmp_path / "ragged.csv"), dataset="x")
    assert not (tmp_path / "cut.csv").exists() and not (tmp_path / "ragged.csv").exists()


def test_cut_tenx_matrix_is_refused(server, tmp_path):
    import h5py
    import numpy as np

    _, base, handler = server
    with h5py.File(handler.root / "m.h5", "w") as f:
        g = f.create_group("matrix")
        g["shape"] = np.array([5, 3], dtype=np.int32)
        g["indptr"] = np.array([0, 2, 4, 6])
        g["data"] = np.ones(4, dtype=np.int32)  # 6 announced by indptr
        g["indices"] = np.zeros(4, dtype=np.int64)
    with pytest.raises(
        ScdrbenchError, match="m.h5: group '/matrix' holds arrays that disagree"
    ) as e:
        download(f"{base}/m.h5", str(tmp_path / "m.h5"), dataset="x")
    assert "it was removed: re-run to download it again" in str(e.value)


def test_first_verified_download_is_locked_and_checked_later(server, tmp_path):
    import json

    from scdrbench.data.download import check_lock, lock_path

    _, base, _ = server
    out = tmp_path / "data.csv.gz"
    download(f"{base}/data.csv.gz", str(out), dataset="x")
    record = json.loads(lock_path(out).read_text())
    assert record["size"] == len(PAYLOAD)
    assert record["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    check_lock(out)  # unchanged: fine
    out.write_bytes(PAYLOAD[:-10] + b"0123456789")  # replaced afterwards, same size
    with pytest.raises(ScdrbenchError, match="changed since it was downloaded and verified"):
        check_lock(out)
    check_lock(tmp_path / "local_copy.csv")  # no lock: a local file, nothing to check
