"""Bundle archives: read safely, pack canonically, unpack read-only.

An upload may be a .zip or a .tar.gz. It is refused before anything is stored when it is too
big (compressed or expanded), holds too many files, or has an entry that could escape the folder
it is unpacked to (absolute path, `..`, a link, a device). Accepted bundles are re-packed
canonically: sorted entries, no timestamps or owners, so the same files always make the same
bytes and the same sha256 (pushing unchanged code makes no new revision).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from darkroom.bundles.manifest import MANIFEST, Manifest, bad, parse_manifest
from darkroom.errors import PayloadTooLarge

__all__ = ["Bundle", "Limits", "pack_dir", "read_bundle", "unpack"]

IGNORED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".mypy_cache",
                ".pytest_cache", ".ruff_cache", "node_modules"}  # fmt: skip
IGNORED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024  # the archive as uploaded
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_files: int = 5000


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: its files (path -> bytes), which are executable, and its manifest."""

    files: dict[str, bytes]
    executable: frozenset[str]
    manifest: Manifest

    @cached_property
    def archive(self) -> bytes:
        """The canonical .tar.gz of the files."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.files):
                data = self.files[path]
                info = tarfile.TarInfo(path)
                info.size, info.mtime, info.uid, info.gid = len(data), 0, 0, 0
                info.mode = 0o755 if path in self.executable else 0o644
                tar.addfile(info, io.BytesIO(data))
        return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.archive).hexdigest()


def _clean(name: str) -> str:
    """A relative POSIX path inside the bundle, or an error naming the entry."""
    name = name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]) or not parts:
        raise bad(f"bundle entry {name!r} escapes the bundle's folder", name, code="unsafe_bundle")
    return "/".join(parts)


ZIP_MAGIC = b"PK\x03\x04"
UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error)


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    size: int  # as the archive declares it; reads never go past it
    executable: bool
    ref: Any  # the ZipInfo or TarInfo to read it by


@contextmanager
def _opened(data: bytes) -> Iterator[tuple[list[_Entry], Callable[[Any], bytes]]]:
    """The archive's regular files, every header checked, and how to read one; links and
    devices are refused here, before any content is read."""
    try:
        if data[:4] == ZIP_MAGIC:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = []
                for info in archive.infolist():
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise bad(f"bundle entry {info.filename!r} is a symbolic link",
                                  info.filename, code="unsafe_bundle")  # fmt: skip
                    path = _clean(info.filename)
                    if not info.is_dir():
                        entries.append(_Entry(path, info.file_size, bool(mode & 0o111), info))
                yield entries, archive.read
            return
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            entries = []
            for member in tar:
                if member.issym() or member.islnk():
                    raise bad(f"bundle entry {member.name!r} is a link (to {member.linkname!r})",
                              member.name, code="unsafe_bundle")  # fmt: skip
                if not (member.isfile() or member.isdir()):
                    raise bad(f"bundle entry {member.name!r} is not a regular file",
                              member.name, code="unsafe_bundle")  # fmt: skip
                path = _clean(member.name)
                if member.isfile():
                    entries.append(_Entry(path, member.size, bool(member.mode & 0o111), member))
            yield entries, lambda member: tar.extractfile(member).read()  # type: ignore[union-attr]
    except UNREADABLE as exc:
        raise bad(f"not a readable .zip or .tar.gz archive: {exc}", code="bad_archive") from exc


def _read_all(data: bytes, limits: Limits) -> tuple[dict[str, bytes], set[str]]:
    """Checks every entry's header and the limits first, then reads the contents."""
    with _opened(data) as (entries, read):
        wanted: dict[str, _Entry] = {}
        total = 0
        for entry in entries:
            path = entry.name
            if path.split("/")[0] in IGNORED_DIRS or path.endswith(IGNORED_SUFFIXES):
                continue
            total += entry.size
            if total > limits.max_unpacked_bytes:
                raise PayloadTooLarge(f"the bundle expands to more than "
                                      f"{limits.max_unpacked_bytes} bytes",
                                      code="bundle_too_large")  # fmt: skip
            if len(wanted) >= limits.max_files:
                raise PayloadTooLarge(f"the bundle has more than {limits.max_files} files",
                                      code="bundle_too_large")  # fmt: skip
            if path in wanted:
                raise bad(f"bundle entry {path!r} appears twice", path)
            wanted[path] = entry
        files = {path: read(entry.ref) for path, entry in wanted.items()}
    return files, {path for path, entry in wanted.items() if entry.executable}


def read_bundle(data: bytes, limits: Limits | None = None) -> Bundle:
    """A checked bundle from an uploaded archive, or an error saying what is wrong with it."""
    limits = limits or Limits()
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the bundle is {len(data)} bytes; the limit is {limits.max_bytes}",
                              code="bundle_too_large")  # fmt: skip
    files, executable = _read_all(data, limits)  # reads stop at the declared, checked sizes
    if MANIFEST not in files:
        tops = {p.split("/")[0] for p in files}
        if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in files:
            prefix = next(iter(tops)) + "/"  # an archive of the folder itself: strip it
            files = {p[len(prefix) :]: v for p, v in files.items()}
            executable = {p[len(prefix) :] for p in executable}
    return Bundle(files, frozenset(executable), parse_manifest(files))


def pack_dir(folder: Path, limits: Limits | None = None) -> Bundle:
    """The bundle of a working folder (the CLI packs, checks, then uploads the archive)."""
    limits = limits or Limits()
    folder = folder.resolve()
    if not (folder / MANIFEST).is_file():
        raise bad(f"{folder} has no {MANIFEST}: is it a bundle's folder? (`darkroom processing "
                  "init NAME` makes one)", MANIFEST)  # fmt: skip
    files: dict[str, bytes] = {}
    executable: set[str] = set()
    total = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(names):
            full = Path(root) / name
            rel = full.relative_to(folder).as_posix()
            if name.endswith(IGNORED_SUFFIXES):
                continue
            if full.is_symlink():
                raise bad(f"{rel} is a symbolic link: bundles hold regular files only", rel,
                          code="unsafe_bundle")  # fmt: skip
            total += full.stat().st_size
            if total > limits.max_unpacked_bytes or len(files) >= limits.max_files:
                raise PayloadTooLarge(f"{folder} holds more than the bundle limits "
                                      f"({limits.max_files} files, {limits.max_unpacked_bytes} "
                                      "bytes)", code="bundle_too_large")  # fmt: skip
            files[rel] = full.read_bytes()
            if full.stat().st_mode & 0o111:
                executable.add(rel)
    return Bundle(files, frozenset(executable), parse_manifest(files))


def unpack(bundle: Bundle, dest: Path) -> None:
    """Writes the files under `dest` (made here), then makes the tree read-only."""
    dest.mkdir(parents=True)
    for path, data in bundle.files.items():
        target = dest.joinpath(*PurePosixPath(path).parts)
        if dest.resolve() not in target.resolve().parents:  # belt and braces after _clean
            raise bad(f"bundle entry {path!r} escapes the bundle's folder", path,
                      code="unsafe_bundle")  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o555 if path in bundle.executable else 0o444)
    for root, dirs, _ in os.walk(dest, topdown=False):
        for d in dirs:
            (Path(root) / d).chmod(0o555)
    dest.chmod(0o555)
