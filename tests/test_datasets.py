"""Data files: directory resolution, checksums, download from a local server, errors."""

from __future__ import annotations

import bz2
import functools
import hashlib
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import pooch
import pytest

from problems import datasets as ds

TOY = b"-1 1:0.5 3:1\n1 2:-0.25\n-1 1:1 2:2 3:3\n1 3:0.125\n"


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """Serve a fresh folder over HTTP on 127.0.0.1; yields ``(folder, base_url)``."""
    root = tmp_path / "served"
    root.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_url():
    """A base URL on a port where nothing listens (offline)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def toy_registered(monkeypatch):
    """Register a tiny file ``toy.bz2`` with its real checksums."""
    packed = bz2.compress(TOY)
    info = ds.FileInfo("toy.bz2", hashlib.sha256(packed).hexdigest(),
                       hashlib.sha256(TOY).hexdigest(), 4, 3)
    monkeypatch.setitem(ds.FILES, "toy.bz2", info)
    return packed


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- resolution -------------------------------------------------------------------------
def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(ds.ENV_DATA, str(tmp_path / "env"))
    assert ds.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert ds.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(ds.ENV_DATA)
    assert ds.resolve_data_dir() == Path(pooch.os_cache("paltest"))


def test_base_url_resolution(monkeypatch):
    monkeypatch.delenv(ds.ENV_URL, raising=False)
    assert ds.resolve_base_url() == ds.LIBSVM_URL
    monkeypatch.setenv(ds.ENV_URL, "http://mirror/x")
    assert ds.resolve_base_url() == "http://mirror/x/"
    assert ds.resolve_base_url("http://arg/") == "http://arg/"


def test_registry_hashes_match_data_readme():
    assert ds.FILES["ijcnn1.bz2"].sha256.startswith("b38a4198ce14")
    assert ds.FILES["ijcnn1.t.bz2"].sha256.startswith("acd1db430684")
    assert ds.FILES["mushrooms.bz2"].content_sha256.startswith("f39a4eb628dc")
    assert not ds.FILES["w8a"].verified and not ds.FILES["rcv1_train.binary.bz2"].verified
    assert {k: d.sigma for k, d in ds.DATASETS.items()} == {
        "mushrooms": 0.5, "ijcnn": 0.05, "w8a": 20.0, "rcv1": 0.25}


# -- download ---------------------------------------------------------------------------
def test_download_shared_files(data_dir, serve, tmp_path, closed_url):
    root, url = serve
    shutil.copy(Path(data_dir) / "ijcnn1.bz2", root / "ijcnn1.bz2")
    # The LIBSVM site serves mushrooms uncompressed: verified by its text's hash.
    (root / "mushrooms").write_bytes(bz2.decompress((Path(data_dir) / "mushrooms.bz2")
                                                    .read_bytes()))
    target = tmp_path / "cache"
    path = ds.fetch("ijcnn1.bz2", data_dir=target, base_url=url)
    assert path == target / "ijcnn1.bz2"
    assert path.read_bytes() == (Path(data_dir) / "ijcnn1.bz2").read_bytes()
    X, y = ds.load_libsvm("mushrooms", data_dir=target, base_url=url)
    assert X.shape == (8124, 112) and set(y) == {1.0, 2.0}
    assert _leftovers(target) == ["ijcnn1.bz2", "mushrooms"]
    # Present now: no network needed.
    assert ds.fetch("mushrooms", data_dir=target, base_url=closed_url).name == "mushrooms"


def test_download_uses_env_vars(serve, tmp_path, monkeypatch, toy_registered):
    root, url = serve
    (root / "toy.bz2").write_bytes(toy_registered)
    monkeypatch.setenv(ds.ENV_DATA, str(tmp_path / "envdir"))
    monkeypatch.setenv(ds.ENV_URL, url)
    X, y = ds.load_libsvm("toy.bz2")
    assert X.shape == (4, 3) and list(y) == [-1, 1, -1, 1]
    assert (tmp_path / "envdir" / "toy.bz2").is_file()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_download_rejected_and_not_kept(serve, tmp_path, toy_registered, damage):
    root, url = serve
    bad = toy_registered[:-7] if damage == "truncate" else toy_registered[:20] + b"X" \
        + toy_registered[21:]
    (root / "toy.bz2").write_bytes(bad)
    target = tmp_path / "cache"
    with pytest.raises(ds.ChecksumError) as err:
        ds.fetch("toy.bz2", data_dir=target, base_url=url)
    msg = str(err.value)
    assert "toy.bz2" in msg and ds.FILES["toy.bz2"].sha256 in msg
    assert hashlib.sha256(bad).hexdigest() in msg and url in msg
    assert _leftovers(target) == []  # nothing half-written or unverified left behind


def test_unverified_download_warns(serve, tmp_path):
    root, url = serve
    (root / "w8a").write_bytes(TOY)
    with pytest.warns(UserWarning, match="NOT verified"):
        X, _ = ds.load_libsvm("w8a", data_dir=tmp_path, base_url=url)
    assert X.shape == (4, 3)


def test_missing_and_offline_error_is_helpful(tmp_path, closed_url):
    with pytest.raises(ds.DataNotFoundError) as err:
        ds.fetch("ijcnn", data_dir=tmp_path, base_url=closed_url)
    msg = str(err.value)
    for part in ("ijcnn1.bz2", str(tmp_path), closed_url + "ijcnn1.bz2", ds.ENV_DATA,
                 ds.ENV_URL, ds.LIBSVM_URL):
        assert part in msg
    assert _leftovers(tmp_path) == []
    with pytest.raises(ds.DataNotFoundError, match="download=True"):
        ds.load_libsvm("mushrooms", data_dir=tmp_path, download=False)


# -- verification of local files --------------------------------------------------------
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_shared_copy_rejected(data_dir, tmp_path, damage):
    path = tmp_path / "mushrooms.bz2"
    shutil.copy(Path(data_dir) / "mushrooms.bz2", path)
    os.chmod(path, 0o644)
    if damage == "flip":
        _flip(path, 5000)
    else:
        path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ds.ChecksumError) as err:
        ds.load_libsvm("mushrooms", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert str(path) in msg and ds.FILES["mushrooms.bz2"].sha256 in msg
    assert hashlib.sha256(path.read_bytes()).hexdigest() in msg


def test_recompressed_copy_accepted_by_content(data_dir, tmp_path):
    text = bz2.decompress((Path(data_dir) / "mushrooms.bz2").read_bytes())
    (tmp_path / "mushrooms.bz2").write_bytes(bz2.compress(text, compresslevel=1))
    assert ds.fetch("mushrooms", data_dir=tmp_path, download=False).is_file()


def test_local_corruption_rejected_without_shared_data(tmp_path, toy_registered):
    (tmp_path / "toy.bz2").write_bytes(toy_registered[:-1])
    with pytest.raises(ds.ChecksumError, match="toy.bz2"):
        ds.load_libsvm("toy.bz2", data_dir=tmp_path, download=False)
    (tmp_path / "toy.bz2").write_bytes(toy_registered)
    assert ds.load_libsvm("toy.bz2", data_dir=tmp_path, download=False)[0].shape == (4, 3)


def test_path_with_expected_sha(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes(TOY)
    assert ds.load_libsvm(path, sha256=hashlib.sha256(TOY).hexdigest())[0].shape == (4, 3)
    with pytest.raises(ds.ChecksumError, match="mine.txt"):
        ds.load_libsvm(path, sha256="0" * 64)


# -- malformed text ---------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"1 1:abc\n", b"this is not libsvm\n",
                                     b"1 2:1 1:3 x\n", b"", b"1 1:nan\n"])
def test_malformed_text_rejected(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ds.MalformedDataError, match="bad.txt"):
        ds.load_libsvm(path)


def test_bad_bz2_stream_rejected(tmp_path):
    path = tmp_path / "bad.bz2"
    path.write_bytes(b"BZh9 definitely not bzip2")
    with pytest.raises(ds.MalformedDataError, match="bad.bz2"):
        ds.load_libsvm(path)


def test_unknown_name_or_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="name_or_path"):
        ds.load_libsvm(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="n_features"):
        ds.load_libsvm(tmp_path / "nope.txt", n_features=0)


# -- issue 12 D16: the data layer under faults --------------------------------------------
@pytest.mark.parametrize("download", [False, True])
def test_directory_in_place_of_a_file_is_reported_as_such(tmp_path, closed_url, download):
    """A directory named mushrooms.bz2 was reported as "not found"."""
    (tmp_path / "mushrooms.bz2").mkdir()
    with pytest.raises(ds.NotAFileError, match=r"mushrooms.bz2: is a directory, not the data"):
        ds.fetch("mushrooms", data_dir=tmp_path, base_url=closed_url, download=download)
    with pytest.raises(ds.NotAFileError, match="name_or_path"):
        ds.load_libsvm(tmp_path / "mushrooms.bz2")


def test_a_file_next_to_the_directory_is_still_used(data_dir, tmp_path):
    (tmp_path / "mushrooms.bz2").mkdir()
    text = bz2.decompress((Path(data_dir) / "mushrooms.bz2").read_bytes())
    (tmp_path / "mushrooms").write_bytes(text)
    assert ds.fetch("mushrooms", data_dir=tmp_path, download=False).name == "mushrooms"


@pytest.mark.parametrize("failure", ["offline", "corrupted", "interrupted"])
def test_failed_download_creates_no_data_directory(serve, tmp_path, closed_url, monkeypatch,
                                                   toy_registered, failure):
    """A missing PALTEST_DATA folder (and its missing parents) was created even when the
    download then failed; a Ctrl-C during the download must not leave it either."""
    root, url = serve
    target = tmp_path / "missing" / "data"
    monkeypatch.setenv(ds.ENV_DATA, str(target))
    if failure == "offline":
        url = closed_url
        expected = ds.DataNotFoundError
    elif failure == "corrupted":
        (root / "toy.bz2").write_bytes(toy_registered[:-3])
        expected = ds.ChecksumError
    else:
        def interrupted(url, known_hash, fname, path, progressbar, **kwargs):
            (Path(path) / "tmp-partial").write_bytes(b"half a file")
            raise KeyboardInterrupt

        monkeypatch.setattr(pooch, "retrieve", interrupted)
        expected = KeyboardInterrupt
    with pytest.raises(expected):
        ds.fetch("toy.bz2", base_url=url)
    assert not (tmp_path / "missing").exists()


def test_failed_download_keeps_an_existing_directory(tmp_path, closed_url):
    with pytest.raises(ds.DataNotFoundError):
        ds.fetch("toy.bz2", data_dir=tmp_path, base_url=closed_url)
    assert tmp_path.is_dir() and _leftovers(tmp_path) == []


def test_stale_staging_folders_of_killed_downloads_are_removed(data_dir, tmp_path):
    """A download killed outright (SIGKILL) left its staging folder with the partial
    file forever; the next fetch removes folders untouched for STALE_DOWNLOAD_SECONDS and
    keeps a fresh one (a download in progress elsewhere)."""
    shutil.copy(Path(data_dir) / "mushrooms.bz2", tmp_path / "mushrooms.bz2")
    old, fresh = tmp_path / ".download-killed", tmp_path / ".download-running"
    for stage in (old, fresh):
        stage.mkdir()
        (stage / "tmpabc123").write_bytes(b"partial")
    then = os.path.getmtime(old) - ds.STALE_DOWNLOAD_SECONDS - 60
    for p in (old / "tmpabc123", old):
        os.utime(p, (then, then))
    assert ds.fetch("mushrooms", data_dir=tmp_path, download=False).is_file()
    assert not old.exists() and (fresh / "tmpabc123").is_file()


# -- an overall deadline (audit 2, N15) -------------------------------------------------


@pytest.fixture
def trickle(monkeypatch):
    """An HTTP server on 127.0.0.1 that sends ``toy.bz2`` one byte every 0.2 s (it
    promises 10,000 bytes); yields its base URL."""
    import time

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    stop = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "10000")
            self.end_headers()
            try:
                for _ in range(10000):
                    if stop.is_set():
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:  # the client gave up
                return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_a_trickling_mirror_meets_the_deadline(trickle, tmp_path, monkeypatch,
                                               toy_registered):
    """A mirror sending 1 byte every 0.2 s (every 5 s in the audit) kept fetch() running
    as long as it sent: no read timeout is ever reached. The deadline
    (PALTEST_DOWNLOAD_TIMEOUT, here 1 s) ends it with the usual download error, and
    nothing is left behind."""
    import time

    monkeypatch.setenv("PALTEST_DOWNLOAD_TIMEOUT", "1")
    target = tmp_path / "data"
    outcome = []

    def attempt():
        t0 = time.monotonic()
        try:
            ds.fetch("toy.bz2", data_dir=target, base_url=trickle)
            outcome.append(("finished", time.monotonic() - t0))
        except ds.DataNotFoundError as err:
            outcome.append((str(err), time.monotonic() - t0))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=15)
    assert outcome, "fetch() still downloading after 15 s"
    message, seconds = outcome[0]
    assert "not finished within 1 s (the deadline; PALTEST_DOWNLOAD_TIMEOUT" in message
    assert seconds < 5
    assert not target.exists()


def test_the_deadline_is_checked(monkeypatch):
    assert ds.resolve_timeout(2) == 2.0
    monkeypatch.setenv(ds.ENV_TIMEOUT, "soon")
    with pytest.raises(ValueError, match="^PALTEST_DOWNLOAD_TIMEOUT: expected a positive"):
        ds.resolve_timeout()
    with pytest.raises(ValueError, match="^timeout: must be > 0"):
        ds.resolve_timeout(0)
    monkeypatch.delenv(ds.ENV_TIMEOUT)
    assert ds.resolve_timeout() == ds.DOWNLOAD_TIMEOUT
