"""Download the official MNIST / Fashion-MNIST IDX files into a per-user cache.

Files come from the public mirrors that tensorflow-datasets and torchvision use
(:data:`MIRRORS`, tried in order), or from ``$MEMJAX_DATA_MIRROR`` / ``mirror=`` (a base
URL holding ``mnist/`` and ``fashion-mnist/``). Each file is streamed to a temporary
file in the cache folder with a tqdm progress bar, its **decompressed** content checked
against the SHA-256 of the official IDX file (:data:`SHA256`; the decompressed bytes, so
a mirror that re-compresses the same data still verifies), and only then renamed into
place. A failed check or an interrupted transfer leaves nothing in the cache.

Cache folder: ``$XDG_CACHE_HOME/memjax`` (default ``~/.cache/memjax``), laid out as an
IDX folder (``CACHE/mnist/train-images-idx3-ubyte.gz`` ...), so it loads like
``$MEMJAX_DATA_DIR``. ``MEMJAX_NO_DOWNLOAD=1`` (opt out of downloads) or
``MEMJAX_OFFLINE=1`` (no network at all) make :func:`download` raise `DownloadError`
without touching the network; files already cached are still used.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from . import _tfds

__all__ = [
    "MIRRORS",
    "SHA256",
    "FILES",
    "DownloadError",
    "cache_dir",
    "cached",
    "download",
    "downloads_disabled",
]

#: Base URLs per dataset, tried in order: the TFDS mirror first, then torchvision's.
MIRRORS = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: SHA-256 and size (bytes) of each official IDX file, decompressed.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            47040016,
        ),
        "train-labels-idx1-ubyte.gz": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            60008,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            7840016,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            10008,
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            47040016,
        ),
        "train-labels-idx1-ubyte.gz": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            60008,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            7840016,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            10008,
        ),
    },
}

MIRROR_ENV = "MEMJAX_DATA_MIRROR"
NO_DOWNLOAD_ENV = "MEMJAX_NO_DOWNLOAD"
OFFLINE_ENV = "MEMJAX_OFFLINE"
_CHUNK = 1 << 16


class DownloadError(OSError):
    """A dataset file could not be downloaded and verified (nothing was cached)."""


def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


def downloads_disabled() -> str | None:
    """Why downloads are off (``MEMJAX_NO_DOWNLOAD`` / ``MEMJAX_OFFLINE`` set), else None."""
    for var in (NO_DOWNLOAD_ENV, OFFLINE_ENV):
        if _truthy(var):
            return f"${var} is set"
    return None


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/memjax``, else ``~/.cache/memjax`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "memjax"


def cached(name: str, split: str, root: Path | None = None) -> Path | None:
    """The cache folder if both files of ``name``/``split`` are in it, else None."""
    root = cache_dir() if root is None else Path(root)
    ok = all((root / name / f).is_file() for f in FILES[split])
    return root if ok else None


def _mirrors(name: str, mirror: str | None) -> list[str]:
    base = mirror or os.environ.get(MIRROR_ENV)
    if base:
        return [base.rstrip("/") + f"/{name}/"]
    return list(MIRRORS[name])


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _fetch(url: str, dest: Path, sha256: str, size: int, timeout: float, progress: bool) -> None:
    """Stream ``url`` to a temporary file beside ``dest``; verify; rename into place."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest = hashlib.sha256()
        unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip container
        n_raw = n_got = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=not progress,
                leave=False,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    data = unzip.decompress(chunk)
                    digest.update(data)
                    n_raw += len(data)
                    n_got += len(chunk)
                    bar.update(len(chunk))
            digest.update(tail := unzip.flush())
            n_raw += len(tail)
            if total is not None and n_got != total:
                raise DownloadError(f"{url}: transfer interrupted ({n_got} of {total} bytes)")
        if not unzip.eof:
            raise DownloadError(f"{url}: transfer interrupted (gzip stream incomplete)")
        if digest.hexdigest() != sha256 or n_raw != size:
            raise DownloadError(
                f"{url}: checksum mismatch (SHA-256 of the decompressed file "
                f"{digest.hexdigest()}, {n_raw} bytes; expected {sha256}, {size} bytes); "
                f"nothing was cached"
            )
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download(
    name: str,
    split: str | None = None,
    *,
    root: str | os.PathLike | None = None,
    mirror: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``name``'s IDX files (both splits, or ``split``) into the cache folder
    ``root`` (default :func:`cache_dir`) and return that folder; files already there are
    kept. Raises `DownloadError` when downloads are disabled, or when no mirror gives a
    verified file (the last error is chained)."""
    from ._load import canonical_name

    name = canonical_name(name)
    why = downloads_disabled()
    if why:
        raise DownloadError(f"download of {name} disabled: {why}")
    root = cache_dir() if root is None else Path(root)
    splits = (split,) if split else tuple(FILES)
    for s in splits:
        for fname in FILES[s]:
            dest = root / name / fname
            if dest.is_file():
                continue
            sha, size = SHA256[name][fname]
            errors = []
            for base in _mirrors(name, mirror):
                host, port = _host_port(base)
                if not _tfds.internet_available(host, port):
                    # A 2 s connect first (answer cached per process): without a
                    # network the fallback is immediate, not a timeout per file.
                    errors.append(f"{base + fname}: {host}:{port} unreachable")
                    continue
                try:
                    _fetch(base + fname, dest, sha, size, timeout, progress)
                    break
                except (OSError, http.client.HTTPException, zlib.error, ValueError) as e:
                    # URLError and timeouts are OSError; a body cut short is
                    # IncompleteRead (HTTPException); a corrupt gzip stream zlib.error.
                    errors.append(f"{base + fname}: {type(e).__name__}: {e}")
            else:
                raise DownloadError(f"could not download {name}/{fname}: " + "; ".join(errors))
    return root
