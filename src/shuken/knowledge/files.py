"""Original files, stored content-addressed under SHUKEN_HOME/files so jobs can resume and citations can
open the source. A file is written to a temporary name and renamed, so a crash never leaves half a file
under a real hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class ByteStream(Protocol):
    """What `put_stream` copies from: an open binary file, an archive member, a size-limited reader."""

    def read(self, size: int = -1, /) -> bytes: ...


class FileTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class FileStore:
    def __init__(self, root: Path):
        self.root = root

    def path_for(self, content_hash: str) -> Path:
        return self.root / content_hash[:2] / content_hash

    def _place(self, temp: Path, content_hash: str) -> Path:
        final = self.path_for(content_hash)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)  # same content, same name: replacing an existing copy is harmless
        return final

    def put_stream(self, source: ByteStream, max_bytes: int) -> tuple[str, int, Path]:
        """Copy a stream in; returns (sha256, size, stored path). Raises FileTooLarge past max_bytes."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                while block := source.read(CHUNK):
                    size += len(block)
                    if size > max_bytes:
                        raise FileTooLarge(max_bytes)
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            content_hash = digest.hexdigest()
            return content_hash, size, self._place(Path(temp_name), content_hash)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def put_file(self, path: Path, content_hash: str) -> Path:
        final = self.path_for(content_hash)
        if final.exists():
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".copy-")
        os.close(handle)
        shutil.copyfile(path, temp_name)
        return self._place(Path(temp_name), content_hash)

    def remove(self, content_hash: str) -> None:
        self.path_for(content_hash).unlink(missing_ok=True)
