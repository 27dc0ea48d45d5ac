"""Safe reading of uploaded archives: no path traversal, no links, no decompression bombs.

Entries are read in place (never extracted to disk), after the whole central directory has been
checked, so a hostile archive is refused before anything is stored. Tar bodies (image uploads
in bulk) are uncompressed and already bounded by the request's size limit.
"""

from __future__ import annotations

import io
import posixpath
import stat
import tarfile
import zipfile
from typing import BinaryIO

from darkroom.errors import InvalidInput, PayloadTooLarge

__all__ = ["SafeZip", "is_zip", "tar_files"]

RATIO_CHECK_MIN_BYTES = 1024 * 1024  # tiny entries compress well legitimately


def is_zip(fp: BinaryIO) -> bool:
    fp.seek(0)
    try:
        return zipfile.is_zipfile(fp)
    finally:
        fp.seek(0)


def tar_files(data: bytes, *, max_files: int) -> list[tuple[str, io.BytesIO]]:
    """The regular files of an uncompressed tar, in archive order, as (name, contents).

    Folders are skipped; links, devices and any other special entry refuse the whole archive
    (a 422 naming it), as does an unreadable or truncated one. Names are returned as written:
    the caller cleans them as it cleans any uploaded file name."""
    files: list[tuple[str, io.BytesIO]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise InvalidInput(
                        f"archive entry {member.name!r} is not a regular file",
                        code="unsafe_archive",
                        details={"entry": member.name},
                    )
                if len(files) >= max_files:
                    raise InvalidInput(
                        f"at most {max_files} files per upload", code="too_many_files",
                        details={"max_files": max_files},
                    )  # fmt: skip
                fh = tar.extractfile(member)
                assert fh is not None  # a regular file always has contents
                files.append((member.name, io.BytesIO(fh.read())))
    except tarfile.TarError as exc:
        raise InvalidInput(f"not a readable tar archive: {exc}", code="bad_archive") from exc
    return files


class SafeZip:
    """A checked zip archive whose entries are looked up by normalized path or base name."""

    def __init__(self, fp: BinaryIO, *, max_total_bytes: int, max_ratio: int) -> None:
        try:
            self._zip = zipfile.ZipFile(fp)
        except zipfile.BadZipFile as exc:
            raise InvalidInput(f"not a readable zip archive: {exc}", code="bad_archive") from exc
        total = 0
        self._by_path: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            name = info.filename.replace("\\", "/")
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise InvalidInput(
                    f"archive entry {info.filename!r} escapes the archive",
                    code="unsafe_archive",
                    details={"entry": info.filename},
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                raise InvalidInput(
                    f"archive entry {info.filename!r} is a symbolic link",
                    code="unsafe_archive",
                    details={"entry": info.filename},
                )
            if info.is_dir():
                continue
            total += info.file_size
            if total > max_total_bytes:
                raise PayloadTooLarge(
                    f"archive expands to more than {max_total_bytes} bytes",
                    code="archive_too_large",
                )
            if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > max_ratio * max(
                info.compress_size, 1
            ):
                raise PayloadTooLarge(
                    f"archive entry {info.filename!r} expands more than {max_ratio}x "
                    "(decompression bomb?)",
                    code="archive_too_large",
                    details={"entry": info.filename},
                )
            self._by_path[posixpath.normpath(name)] = info
        self._by_base: dict[str, list[str]] = {}
        for path in self._by_path:
            self._by_base.setdefault(posixpath.basename(path), []).append(path)

        self.paths: list[str] = sorted(self._by_path)
        """Every file entry, normalized and sorted."""

    def __contains__(self, path: object) -> bool:
        return path in self._by_path

    def find(self, name: str, *prefixes: str) -> str | None:
        """The entry for `name`: exact path, under one of `prefixes`, or a unique base name."""
        name = posixpath.normpath(name.replace("\\", "/").lstrip("/"))
        if name in self._by_path:
            return name
        for prefix in prefixes:
            candidate = posixpath.normpath(posixpath.join(prefix, name))
            if candidate in self._by_path:
                return candidate
        same_base = self._by_base.get(posixpath.basename(name), [])
        return same_base[0] if len(same_base) == 1 else None

    def read(self, path: str) -> bytes:
        info = self._by_path[path]
        with self._zip.open(info) as fh:
            data = fh.read(info.file_size + 1)
        if len(data) != info.file_size:  # a lying header is a bomb too
            raise InvalidInput(
                f"archive entry {path!r} does not match its header", code="unsafe_archive"
            )
        return data

    def close(self) -> None:
        self._zip.close()
