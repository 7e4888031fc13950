"""The IDX downloader against a local HTTP server on 127.0.0.1 serving a temporary copy
of the official files: good download, corrupted file, interrupted transfer, no server,
opt-out and offline mode, and the source each load records."""

import http.server
import shutil
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from memjax import data
from memjax.data import _download, _tfds

NAME = "mnist"
TEST_FILES = _download.FILES["test"]


@pytest.fixture
def served(tmp_path, data_dir):
    """A copy of the official MNIST test-split files served over HTTP on 127.0.0.1;
    yields (base_url, served_root, handler_options)."""
    root = tmp_path / "www"
    (root / NAME).mkdir(parents=True)
    for f in TEST_FILES:
        shutil.copy(data_dir / NAME / f, root / NAME / f)
    options = {"truncate": None}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

        def do_GET(self):
            cut = options["truncate"]
            if cut is None:
                return super().do_GET()
            body = (root / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut])  # then close mid-body
            self.wfile.flush()
            self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root, options
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "memjax"


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.cache_dir() == tmp_path / "memjax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir() == Path.home() / ".cache" / "memjax"


def test_good_download_verifies_and_loads(served, cache, data_dir):
    base, _, _ = served
    root = data.download(NAME, "test", mirror=base, progress=False)
    assert root == cache
    assert sorted(p.name for p in (cache / NAME).iterdir()) == sorted(TEST_FILES)
    x, y = data.load(NAME, "test", source="download")
    source = data.last_source()
    x_ref, y_ref = data.load(NAME, "test", data_dir=data_dir)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert source == {
        "dataset": NAME,
        "split": "test",
        "source": "download",
        "path": str(cache.resolve()),
        "n": 10_000,
    }


def test_auto_downloads_once_then_uses_the_cache(served, cache, monkeypatch):
    base, root, _ = served
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setenv("MEMJAX_DATA_MIRROR", base)
    monkeypatch.setattr(_tfds, "prepared", lambda *a, **k: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _ = data.load(NAME, "test")
    assert x.shape == (10_000, 28, 28) and data.last_source()["source"] == "download"
    shutil.rmtree(root)  # the server has nothing now: the second load must not need it
    x2, _ = data.load(NAME, "test")
    np.testing.assert_array_equal(x, x2)


def test_corrupted_file_is_a_checksum_error_and_nothing_is_cached(served, cache):
    base, root, _ = served
    f = root / NAME / TEST_FILES[1]
    import gzip

    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one label changed, still a valid IDX file
    f.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(data.DownloadError, match="checksum mismatch"):
        data.download(NAME, "test", mirror=base, progress=False)
    left = [p.name for p in (cache / NAME).iterdir()] if (cache / NAME).exists() else []
    assert TEST_FILES[1] not in left and not [p for p in left if p.endswith(".part")]


def test_interrupted_transfer_leaves_nothing(served, cache):
    base, _, options = served
    options["truncate"] = 5000
    with pytest.raises(data.DownloadError, match="IncompleteRead|interrupted"):
        data.download(NAME, "test", mirror=base, progress=False)
    assert not (cache / NAME).exists() or not any((cache / NAME).iterdir())


def test_no_server_falls_back_to_the_sample_within_seconds(cache, monkeypatch):
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(cache.parent / "empty_tfds"))
    monkeypatch.setattr(_tfds, "internet_available", lambda *a, **k: False)
    t0 = time.perf_counter()
    with pytest.warns(data.SampleDataWarning, match="bundled sample.*Download unusable"):
        x, _ = data.load(NAME, "test")
    assert time.perf_counter() - t0 < 10.0
    assert x.shape == (1000, 28, 28)
    assert data.last_source()["source"] == "sample" and data.last_source()["path"] is None


@pytest.mark.parametrize("var", ["MEMJAX_NO_DOWNLOAD", "MEMJAX_OFFLINE"])
def test_opt_out_and_offline_never_connect(var, cache, monkeypatch):
    monkeypatch.setenv(var, "1")
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setattr(_download.urllib.request, "urlopen", None)  # must not be called
    with pytest.raises(data.DownloadError, match=var):
        data.download(NAME, "test")
    monkeypatch.setattr(_tfds, "internet_available", lambda *a, **k: False)
    with pytest.warns(data.SampleDataWarning, match=var):
        data.load(NAME, "test")


def test_tests_cannot_reach_real_hosts():
    """The guard in tests/data/conftest.py: a real mirror is refused before any I/O."""
    with pytest.raises(data.DownloadError, match="unreachable|disabled in tests"):
        data.download(
            NAME,
            "test",
            mirror="https://storage.googleapis.com/cvdf-datasets",
            progress=False,
            timeout=2,
        )


def test_sources_record_idx_folder_and_sample(data_dir):
    data.clear_sources()
    data.load(NAME, "test", data_dir=data_dir, limit=10)
    data.load("fashion-mnist", "train", source="sample", limit=10)
    got = data.loaded_sources()
    assert got[0]["source"] == "idx" and got[0]["path"] == str(Path(data_dir).resolve())
    assert got[1] == {
        "dataset": "fashion-mnist",
        "split": "train",
        "source": "sample",
        "path": None,
        "n": 10,
    }
    data.clear_sources()
    assert data.loaded_sources() == [] and data.last_source() is None


def test_checksums_match_the_official_files(data_dir):
    import gzip
    import hashlib

    for name, files in _download.SHA256.items():
        for fname, (sha, size) in files.items():
            raw = gzip.decompress((data_dir / name / fname).read_bytes())
            assert (hashlib.sha256(raw).hexdigest(), len(raw)) == (sha, size), (name, fname)
