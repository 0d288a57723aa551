"""LIBSVM data files: where they live, their checksums, download and loading.

Data directory
    :func:`resolve_data_dir` resolves, in this order: the ``data_dir`` argument, the environment
    variable ``PALTEST_DATA``, the user's cache folder ``pooch.os_cache("paltest")``.
    Files are looked up there and downloads are written there.

Registry
    :data:`FILES` lists the known files with the SHA-256 of their bytes (``sha256``) and
    of their decompressed LIBSVM text (``content_sha256``). A file passes verification
    when either hash matches, so the same text compressed differently is accepted.
    ``None`` means *not verified*: no checksum from a verified source is known (w8a,
    rcv1); such files are used with a :class:`UserWarning`. The known hashes are those of
    the verified copies described in the project's data README; whether they are
    byte-identical to the files on the LIBSVM site has not been checked, which is why the
    content hash is accepted too. :data:`DATASETS` names the data sets of the kernel
    experiments with their files, reference RBF width ``sigma`` (SLS reference code:
    mushrooms 0.5, ijcnn 0.05, w8a 20.0, rcv1 0.25) and the rows used.

Verification
    Every registered file is verified before use; a truncated or corrupted file raises
    :class:`ChecksumError` naming the file, the expected and the actual hashes, and is
    never parsed.

Download
    A missing file is fetched with :mod:`pooch` from the LIBSVM binary-classification
    page (:data:`LIBSVM_URL`), or from a mirror given by the ``base_url`` argument or the
    ``PALTEST_DATA_URL`` environment variable. Pooch writes to a temporary file and moves
    it; the result is verified in a private staging folder (``.download-*`` in the data
    directory) and only then moved into the data directory (one atomic rename), so a
    failed or corrupted download never leaves a file behind, and a data directory
    created for a download that failed is removed again. A download killed outright
    (no chance to clean up) leaves its staging folder; every :func:`fetch` removes
    staging folders untouched for :data:`STALE_DOWNLOAD_SECONDS` (an hour: a live
    download writes at least every 30 s, pooch's network timeout). When the file is
    missing and cannot be fetched, :class:`DataNotFoundError` says which file, where it
    looked, and how to get it. A path that exists but is not a file (e.g. a directory
    named ``mushrooms.bz2``) is reported as such (:class:`NotAFileError`).

Example
-------
>>> from problems import datasets
>>> datasets.DATASETS["ijcnn"].sigma
0.05
>>> datasets.FILES["mushrooms.bz2"].sha256[:12]
'a039b9f09528'
>>> X, y = datasets.load_libsvm("mushrooms")  # doctest: +SKIP
>>> X.shape  # doctest: +SKIP
(8124, 112)
"""

from __future__ import annotations

import bz2
import hashlib
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DATASETS",
    "ENV_DATA",
    "ENV_TIMEOUT",
    "ENV_URL",
    "FILES",
    "LIBSVM_URL",
    "READ_TIMEOUT",
    "ChecksumError",
    "DataNotFoundError",
    "DOWNLOAD_TIMEOUT",
    "DatasetInfo",
    "FileInfo",
    "MalformedDataError",
    "NotAFileError",
    "STALE_DOWNLOAD_SECONDS",
    "fetch",
    "load_libsvm",
    "resolve_base_url",
    "resolve_data_dir",
    "resolve_timeout",
    "verify",
]

#: Environment variable naming the data directory.
ENV_DATA = "PALTEST_DATA"
#: Environment variable overriding the download base URL (a mirror, a test server).
ENV_URL = "PALTEST_DATA_URL"
#: The LIBSVM binary-classification data page; files are at ``LIBSVM_URL + name``.
LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"


class ChecksumError(ValueError):
    """A data file's SHA-256 does not match the registry (corrupted or truncated)."""


class DataNotFoundError(FileNotFoundError):
    """A data file is missing and could not be downloaded."""


class MalformedDataError(ValueError):
    """A file is not valid LIBSVM/svmlight text."""


class NotAFileError(OSError):
    """A data file's path exists but is not a regular file (e.g. a directory)."""


#: Environment variable overriding :data:`DOWNLOAD_TIMEOUT` (seconds).
ENV_TIMEOUT = "PALTEST_DOWNLOAD_TIMEOUT"
#: The overall deadline of one download, in seconds (a mirror that sends a byte now and
#: then would otherwise keep :func:`fetch` running for ever).
DOWNLOAD_TIMEOUT = 1800.0
#: The longest wait for the next bytes of a download (seconds).
READ_TIMEOUT = 30.0

#: Staging folders (``.download-*``) untouched for this long are left over from a
#: download that was killed, and are removed.
STALE_DOWNLOAD_SECONDS = 3600.0
_STAGE_PREFIX = ".download-"


@dataclass(frozen=True)
class FileInfo:
    """A known data file: its name, checksums (``None`` = not verified) and size."""

    name: str
    sha256: str | None
    content_sha256: str | None = None
    rows: int | None = None
    n_features: int | None = None
    note: str = ""

    @property
    def verified(self) -> bool:
        """Whether a checksum from a verified source is known."""
        return self.sha256 is not None or self.content_sha256 is not None


@dataclass(frozen=True)
class DatasetInfo:
    """A data set of the kernel experiments.

    ``files`` are looked up in order; the last one is what the LIBSVM site serves and is
    downloaded when none is present. ``n_rows`` rows are used (``None``: all).
    """

    name: str
    files: tuple[str, ...]
    sigma: float
    n_features: int
    n_rows: int | None = None
    test_file: str | None = None
    note: str = ""


_MUSHROOMS_TEXT = "f39a4eb628dc61a7d43760815b061c9e497aa728ce1ad8bde57a09ef6043b538"

FILES: dict[str, FileInfo] = {
    f.name: f
    for f in (
        FileInfo("mushrooms.bz2",
                 "a039b9f09528a5dcfb76e0e3d32eb29b10aa6852485d90fc79cc8dffd3f192e2",
                 _MUSHROOMS_TEXT, 8124, 112,
                 "verified copy (CRs removed, recompressed); the LIBSVM site serves "
                 "the uncompressed 'mushrooms'"),
        FileInfo("mushrooms", None, _MUSHROOMS_TEXT, 8124, 112,
                 "uncompressed, as served by the LIBSVM site; checked against the text "
                 "of the verified copy (byte identity with the site not checked)"),
        FileInfo("ijcnn1.bz2",
                 "b38a4198ce142d43e96fb86d17b87211feec1f909ac344fa057455c69de29de3",
                 "7fe291672c3fefe6a7e3c51529becd23f0e985ba05ffb8d53c9c648c1e91cc19",
                 49990, 22, "ijcnn1.tr (35,000 rows) followed by ijcnn1.val (14,990)"),
        FileInfo("ijcnn1.t.bz2",
                 "acd1db430684fdd3f0c768ecc49aa8e749d0004fc117611220c2aa576a7b6a24",
                 "e7b0bbd518641980dc322746c6bc59d019d3153934e6258e48f9d8cfae2c4bb8",
                 91701, 22, "ijcnn1 test split"),
        FileInfo("w8a", None, None, 49749, 300, "not verified: no known checksum"),
        FileInfo("w8a.t", None, None, 14951, 300, "not verified: no known checksum"),
        FileInfo("rcv1_train.binary.bz2", None, None, 20242, 47236,
                 "not verified: no known checksum"),
    )
}

DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("mushrooms", ("mushrooms.bz2", "mushrooms"), 0.5, 112),
        DatasetInfo("ijcnn", ("ijcnn1.bz2",), 0.05, 22, n_rows=35000,
                    test_file="ijcnn1.t.bz2",
                    note="ijcnn1.tr = the first 35,000 rows of ijcnn1"),
        DatasetInfo("w8a", ("w8a",), 20.0, 300, test_file="w8a.t",
                    note="not verified; 39,799 training rows: on-the-fly kernel"),
        DatasetInfo("rcv1", ("rcv1_train.binary.bz2",), 0.25, 47236,
                    note="not verified; 47,236 sparse features: dense copy is 7.6 GB"),
    )
}


def resolve_data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path``, else ``$PALTEST_DATA``, else the user cache folder."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("paltest"))


def resolve_base_url(url: str | None = None) -> str:
    """The download base URL: ``url``, else ``$PALTEST_DATA_URL``, else :data:`LIBSVM_URL`."""
    url = url or os.environ.get(ENV_URL) or LIBSVM_URL
    return url if url.endswith("/") else url + "/"


def _sha256(chunks: Any) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _read_chunks(f: Any, size: int = 1 << 20) -> Any:
    while chunk := f.read(size):
        yield chunk


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes."""
    with open(path, "rb") as f:
        return _sha256(_read_chunks(f))


def content_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of the decompressed text (bz2 files), or of the bytes; ``None`` if unreadable."""
    opener = bz2.open if str(path).endswith(".bz2") else open
    try:
        with opener(path, "rb") as f:
            return _sha256(_read_chunks(f))
    except (OSError, EOFError, ValueError):
        return None


def verify(path: str | os.PathLike, info: FileInfo | str | None) -> bool:
    """Check ``path`` against ``info`` (a :class:`FileInfo` or an expected SHA-256).

    Returns ``True`` when verified, ``False`` when no checksum is known (with a
    :class:`UserWarning`). Raises :class:`ChecksumError` naming the file, the expected
    and the actual hashes when neither the bytes nor the decompressed text match.
    """
    if isinstance(info, str):
        info = FileInfo(Path(path).name, info.lower())
    if info is None or not info.verified:
        warnings.warn(f"{path}: no known checksum, the file is used NOT verified",
                      UserWarning, stacklevel=3)
        return False
    actual = file_sha256(path)
    if info.sha256 is not None and actual == info.sha256:
        return True
    actual_text = None
    if info.content_sha256 is not None:
        actual_text = actual if not str(path).endswith(".bz2") else content_sha256(path)
        if actual_text == info.content_sha256:
            return True
    raise ChecksumError(
        f"{path}: checksum mismatch, the file is corrupted or truncated and is not used. "
        f"expected sha256 {info.sha256} (file) / {info.content_sha256} (decompressed "
        f"text); actual sha256 {actual} (file) / {actual_text or 'unreadable'} "
        "(decompressed text). Delete it and download it again."
    )


def _remove_stale_downloads(directory: Path, max_age: float = STALE_DOWNLOAD_SECONDS) -> None:
    """Remove the staging folders in ``directory`` untouched for ``max_age`` seconds."""
    try:
        stages = [p for p in directory.glob(_STAGE_PREFIX + "*") if p.is_dir()]
    except OSError:
        return
    now = time.time()
    for stage in stages:
        try:
            newest = max([stage.stat().st_mtime]
                         + [p.stat().st_mtime for p in stage.rglob("*")])
        except OSError:  # removed meanwhile, or unreadable: not ours to judge
            continue
        if now - newest > max_age:
            shutil.rmtree(stage, ignore_errors=True)


def resolve_timeout(timeout: Any = None) -> float:
    """The download deadline in seconds: ``timeout``, else ``$PALTEST_DOWNLOAD_TIMEOUT``,
    else :data:`DOWNLOAD_TIMEOUT`; a positive finite number (errors name the source)."""
    from paltest.checks import check_positive

    if timeout is not None:
        return check_positive("timeout", timeout)
    env = os.environ.get(ENV_TIMEOUT, "").strip()
    if not env:
        return DOWNLOAD_TIMEOUT
    try:
        return check_positive(ENV_TIMEOUT, float(env))
    except ValueError:
        raise ValueError(f"{ENV_TIMEOUT}: expected a positive number of seconds, "
                         f"got {env!r}") from None


class _DeadlineDownloader:
    """A pooch downloader for http(s) with an overall deadline: the file is read with
    ``read1`` (whatever bytes have arrived) and the deadline checked after each read, so
    a trickle of bytes cannot keep it going; a silent server is cut off by the socket
    timeout (at most :data:`READ_TIMEOUT`, and never past the deadline by more). Other
    URL schemes go to pooch's own downloader."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, url: str, output_file: Any, pooch_obj: Any, **kwargs: Any) -> Any:
        import urllib.request

        import pooch

        if not url.lower().startswith(("http://", "https://")) or kwargs.get("check_only"):
            return pooch.downloaders.choose_downloader(url)(url, output_file, pooch_obj,
                                                            **kwargs)
        deadline = time.monotonic() + self.seconds
        request = urllib.request.Request(url, headers={"User-Agent": "paltest"})
        with urllib.request.urlopen(request, timeout=min(READ_TIMEOUT, self.seconds)) as resp:
            if isinstance(output_file, (str, os.PathLike)):
                with open(output_file, "wb") as out:
                    self._copy(resp, out, deadline)
            else:
                self._copy(resp, output_file, deadline)

    def _copy(self, resp: Any, out: Any, deadline: float) -> None:
        while chunk := resp.read1(1 << 16):
            out.write(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError(f"not finished within {self.seconds:g} s (the deadline; "
                                   f"{ENV_TIMEOUT} sets it)")


def _download(name: str, directory: Path, url: str, info: FileInfo | None,
              timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Fetch ``url`` with pooch into a staging folder, verify, move into ``directory``.

    Folders created for the download (``directory`` and missing parents) are removed
    again, if still empty, when it fails.
    """
    import pooch

    created = [p for p in (directory, *directory.parents) if not p.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=directory))
        try:
            staged = Path(pooch.retrieve(url, known_hash=None, fname=name, path=stage,
                                         progressbar=False,
                                         downloader=_DeadlineDownloader(timeout)))
            verify(staged, info)
            target = directory / name
            os.replace(staged, target)
            return target
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:  # not empty (another writer) or gone: keep the rest
                break
        raise


def _not_found(names: tuple[str, ...], directory: Path, url: str, err: Any) -> str:
    where = ", ".join(str(directory / n) for n in names)
    how = (f"Downloading is off: pass download=True to fetch it from {url}" if err is None
           else f"The download from {url} failed ({type(err).__name__}: {err})")
    return (
        f"data file {names[-1]!r} not found (looked for {where}). {how}. Or download it "
        f"by hand into that folder, set {ENV_DATA} to a folder that holds it, or set "
        f"{ENV_URL} (or pass base_url=...) to a mirror of {LIBSVM_URL}."
    )


def fetch(name: str, *, data_dir: str | os.PathLike | None = None,
          base_url: str | None = None, download: bool = True, verify_file: bool = True,
          timeout: float | None = None) -> Path:
    """The verified local path of a data set (``"mushrooms"``) or file (``"ijcnn1.bz2"``).

    Looks for the file(s) in :func:`resolve_data_dir`; downloads a missing one from
    :func:`resolve_base_url` when ``download`` is true. Raises :class:`DataNotFoundError`,
    :class:`ChecksumError`, and :class:`NotAFileError` when no candidate is a file but
    one of their paths exists (a directory, say). ``verify_file=False`` skips the
    checksum (not recommended). Stale staging folders of killed downloads are removed
    first (see the module docstring). A download has an overall deadline of ``timeout``
    seconds (:func:`resolve_timeout`: default ``$PALTEST_DOWNLOAD_TIMEOUT``, else
    :data:`DOWNLOAD_TIMEOUT`); past it, it fails as any failed download does.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a data set or file name, got {name!r}")
    names = DATASETS[name].files if name in DATASETS else (name,)
    directory = resolve_data_dir(data_dir)
    _remove_stale_downloads(directory)
    for candidate in names:
        path = directory / candidate
        if path.is_file():
            if verify_file:
                verify(path, FILES.get(candidate))
            return path
    for candidate in names:
        path = directory / candidate
        if path.exists():  # but not a file: say so, rather than "not found"
            what = "a directory" if path.is_dir() else "not a regular file"
            raise NotAFileError(
                f"{path}: is {what}, not the data file {candidate!r}; remove or rename "
                f"it, or set {ENV_DATA} to a folder that holds the file")
    url = resolve_base_url(base_url) + names[-1]
    if not download:
        raise DataNotFoundError(_not_found(names, directory, url, None))
    info = FILES.get(names[-1]) if verify_file else FileInfo(names[-1], None)
    seconds = resolve_timeout(timeout)
    try:
        with warnings.catch_warnings():
            if not verify_file:
                warnings.simplefilter("ignore", UserWarning)
            return _download(names[-1], directory, url, info, seconds)
    except ChecksumError as err:
        raise ChecksumError(f"downloaded from {url}: {err}") from None
    except Exception as err:  # network, HTTP status, permissions
        raise DataNotFoundError(_not_found(names, directory, url, err)) from err


def load_libsvm(name_or_path: str | os.PathLike, *, n_features: int | None = None,
                data_dir: str | os.PathLike | None = None, base_url: str | None = None,
                download: bool = True, sha256: str | None = None, verify_file: bool = True,
                ) -> tuple[Any, np.ndarray]:
    """Load a LIBSVM file as ``(X, y)``: a SciPy CSR matrix and a float64 label vector.

    ``name_or_path`` is a registered data set or file name (fetched and verified with
    :func:`fetch`; a registered name wins over a same-named file in the working
    directory, write ``./mushrooms`` for that) or a path to any LIBSVM file
    (``.bz2``/``.gz`` read directly), verified against ``sha256`` when given. Malformed text raises
    :class:`MalformedDataError` naming the file.
    """
    if n_features is not None and (isinstance(n_features, bool) or int(n_features) < 1):
        raise ValueError(f"n_features: must be a positive int, got {n_features!r}")
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and (text in DATASETS or text in FILES):
        path = fetch(text, data_dir=data_dir, base_url=base_url, download=download,
                     verify_file=verify_file)
    else:
        path = Path(text).expanduser()
        if path.exists() and not path.is_file():
            raise NotAFileError(f"name_or_path: {text!r} is a directory or another "
                                "non-file, not a LIBSVM file")
        if not path.is_file():
            raise FileNotFoundError(
                f"name_or_path: {text!r} is neither an existing file nor a registered name "
                f"(data sets {sorted(DATASETS)}, files {sorted(FILES)})")
        if sha256 is not None and verify_file:
            verify(path, sha256)
    return _parse(path, n_features)


def _parse(path: Path, n_features: int | None) -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, dtype=np.float64)
    except (ValueError, OSError, EOFError, RuntimeError) as err:
        raise MalformedDataError(
            f"{path}: not a valid LIBSVM/svmlight file ({type(err).__name__}: {err})"
        ) from err
    if X.shape[0] == 0:
        raise MalformedDataError(f"{path}: no data rows")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(X.data)):
        raise MalformedDataError(f"{path}: non-finite labels or feature values")
    return X, np.asarray(y, dtype=np.float64)
