"""Downloads against a local HTTP server (127.0.0.1, with Range support): never the network."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from scripts.common.errors import ScdrbenchError
from scripts.data.download import download

PAYLOAD = gzip.compress(b"".join(b"gene%d,1,2,3\n" % i for i in range(20000)))


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root``, honouring ``Range: bytes=N-``; counts requests."""

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
        if rng and getattr(self.server, "honour_range", True):
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "data.csv.gz").write_bytes(PAYLOAD)
    handler = type("H", (RangeHandler,), {"root": root, "requests": []})
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


def test_resume_with_range(server, tmp_path):
    _, base, handler = server
    out = tmp_path / "data.csv.gz"
    part = tmp_path / "data.csv.gz.part"
    part.write_bytes(PAYLOAD[:1000])
    download(f"{base}/data.csv.gz", str(out), dataset="x", size=len(PAYLOAD))
    assert handler.requests == ["bytes=1000-"]
    assert out.read_bytes() == PAYLOAD


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

    from scripts.data.download import check_lock, lock_path

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
