"""SHA-256 of model files, with a rich progress bar on the terminal for large files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

CHUNK = 4 * 1024 * 1024
PROGRESS_THRESHOLD = 64 * 1024 * 1024


def progress_bar() -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a bar drawn into a log file is noise
    )


def sha256_file(path: Path, show_progress: bool = False) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    show = show_progress and size >= PROGRESS_THRESHOLD
    with path.open("rb") as handle:
        if not show:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
            return digest.hexdigest()
        with progress_bar() as progress:
            task = progress.add_task(f"Hashing {path.name}", total=size)
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
                progress.advance(task, len(block))
    return digest.hexdigest()
