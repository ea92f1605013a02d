"""Accepting uploaded files safely: size and count limits, and .zip archives expanded within limits.

Limits are checked while bytes are copied (an archive's own size headers are not trusted), and a request
that breaks a limit leaves nothing behind: files it stored that no document uses are released again.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from collections.abc import Callable

from shuken.config import Settings
from shuken.errors import InvalidRequest, PayloadTooLarge
from shuken.knowledge.files import ByteStream, FileStore, FileTooLarge
from shuken.localisable import tr

ARCHIVE_SUFFIXES = (".zip",)


def _is_junk(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class _Budget:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.files = 0
        self.archive_bytes = 0

    def count_file(self) -> None:
        self.files += 1
        if self.files > self.settings.upload_max_files:
            raise InvalidRequest(tr("Too many files in one upload (limit %(limit)s, archives counted by their "
                                    "contents); split the upload.", limit=self.settings.upload_max_files),
                                 param="files", code="too_many_files")


class _Limited:
    """A reader that refuses to hand out more than `remaining` bytes in total (decompression bombs)."""

    def __init__(self, source: ByteStream, budget: _Budget):
        self.source = source
        self.budget = budget

    def read(self, size: int = -1) -> bytes:
        block = self.source.read(size)
        self.budget.archive_bytes += len(block)
        if self.budget.archive_bytes > self.budget.settings.archive_max_bytes:
            raise PayloadTooLarge(tr("The archive expands to more than %(limit)s bytes; upload its files in "
                                     "smaller archives.", limit=self.budget.settings.archive_max_bytes),
                                  param="files")
        return block


def store_uploads(files: FileStore, settings: Settings, uploaded: list[tuple[str, BinaryIO]],
                  clean_name: Callable[[str], str], release: Callable[[set[str]], None]) -> list[tuple[str, Path]]:
    if not uploaded:
        raise InvalidRequest(tr("No files in the upload; send them as multipart form field 'files'."),
                             param="files")
    budget = _Budget(settings)
    stored: list[tuple[str, Path]] = []
    hashes: set[str] = set()

    def put(name: str, stream: ByteStream) -> None:
        budget.count_file()
        try:
            content_hash, _size, path = files.put_stream(stream, settings.upload_max_bytes)
        except FileTooLarge as exc:
            raise PayloadTooLarge(tr("%(name)s is larger than the limit of %(limit)s bytes.", name=name,
                                     limit=exc.limit), param="files", code="file_too_large") from None
        hashes.add(content_hash)
        stored.append((name, path))

    try:
        for raw_name, stream in uploaded:
            name = clean_name(raw_name or "")
            if not name.lower().endswith(ARCHIVE_SUFFIXES):
                put(name, stream)
                continue
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, OSError):
                raise InvalidRequest(tr("%(name)s is not a readable .zip archive.", name=name), param="files",
                                     code="bad_archive") from None
            with archive:
                for member in archive.infolist():
                    if member.is_dir() or _is_junk(member.filename):
                        continue
                    member_name = clean_name(f"{Path(name).stem}/{member.filename}")
                    with archive.open(member) as member_stream:
                        put(member_name, _Limited(member_stream, budget))
    except BaseException:
        release(hashes)
        raise
    return stored
