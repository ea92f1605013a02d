"""Read a GGUF file's header (architecture, size, quantisation, context, chat template) without loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shuken.errors import InvalidRequest

GGUF_MAGIC = b"GGUF"


def _field_value(reader, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    value = field.contents()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _human_count(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.0f}{unit}" if count / size >= 10 else f"{count / size:.1f}{unit}"
    return str(count)


def is_gguf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == GGUF_MAGIC


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """Metadata for a manifest. Raises InvalidRequest for a file that is not a readable GGUF."""
    from gguf import GGUFReader, LlamaFileType

    if not is_gguf(path):
        raise InvalidRequest(f"{path} is not a GGUF file (bad magic bytes). Shuken serves GGUF models.")
    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # the gguf reader raises assorted errors on truncated or corrupt files
        raise InvalidRequest(f"{path} could not be read as GGUF: {exc}") from exc

    architecture = _field_value(reader, "general.architecture") or "unknown"
    parameters = sum(int(tensor.n_elements) for tensor in reader.tensors)
    file_type = _field_value(reader, "general.file_type")
    try:
        quantization = LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        quantization = f"type-{file_type}"
    chat_template = _field_value(reader, "tokenizer.chat_template")
    return {
        "architecture": architecture,
        "model_name": _field_value(reader, "general.name"),
        "parameters": parameters,
        "parameters_human": _human_count(parameters),
        "quantization": quantization,
        "context_length": _field_value(reader, f"{architecture}.context_length"),
        "embedding_length": _field_value(reader, f"{architecture}.embedding_length"),
        "chat_template": chat_template,
        "has_chat_template": bool(chat_template),
        "gguf_version": _field_value(reader, "GGUF.version"),
    }
