"""Downloading the standard datasets: resumable-safe (atomic), verified, with a progress bar.

These machines have no internet at run time; the code is exercised by the tests through
``file://`` URLs pointing at small archives that the tests write.
"""

from __future__ import annotations

import hashlib
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from selfsup.errors import DataError
from selfsup.io import atomic_path


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | Path, sha256: str | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is already there."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256sum(dest) == sha256):
        return dest
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(dest) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                                              disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
            if sha256 is not None and (got := sha256sum(tmp)) != sha256:
                raise DataError(f"checksum mismatch for {url}: expected {sha256}, got {got}", dest)
    except OSError as exc:
        raise DataError(f"download of {url} failed ({exc}); download it by hand and pass its folder", dest) from None
    return dest


def extract(archive: str | Path, into: str | Path) -> Path:
    """Unpack a .zip or .tar(.gz) archive into ``into`` (refusing members that escape it)."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if not (root / name).resolve().is_relative_to(root):
                        raise DataError(f"archive member {name!r} would be written outside {into}", archive)
                zf.extractall(into)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
        else:
            raise DataError("not a zip or tar archive", archive)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DataError(f"corrupt archive ({exc})", archive) from None
    return into


def fetch_and_extract(url: str, root: str | Path, marker: str, sha256: str | None = None) -> Path:
    """Make sure ``root/marker`` exists, downloading and unpacking ``url`` into ``root`` if not."""
    root = Path(root)
    if (root / marker).exists():
        return root / marker
    archive = download(url, root / Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name, sha256)
    extract(archive, root)
    if not (root / marker).exists():
        raise DataError(f"the archive from {url} has no {marker!r} inside", root)
    return root / marker


__all__ = ["download", "extract", "fetch_and_extract", "sha256sum"]
