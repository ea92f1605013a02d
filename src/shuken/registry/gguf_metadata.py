"""Read a GGUF file's header (architecture, size, quantisation, context, chat template) without loading it.

We parse the header ourselves rather than with gguf.GGUFReader: the reader builds a numpy view for
every element of every array, so the tokenizer arrays of a 262k-token vocabulary took 9 s for
Gemma 3 270M (and grow with the vocabulary). Here array bodies are skipped, so a header reads in
milliseconds. The gguf package still supplies the type constants, and the tests check this reader
against GGUFReader field by field.
"""

from __future__ import annotations

import mmap
import struct
from math import prod
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

from shuken.errors import InvalidRequest
from shuken.localisable import tr

GGUF_MAGIC = b"GGUF"
_SCALARS = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}
MAX_DIMS = 8


class _Cursor:
    def __init__(self, data: mmap.mmap):
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str):
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = self.unpack("<Q")
        if self.pos + size > len(self.data):
            raise ValueError("string runs past the end of the file")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        size = self.unpack("<Q")
        self.pos += size
        if self.pos > len(self.data):
            raise ValueError("string runs past the end of the file")

    def value(self, kind: int) -> Any:
        kind = GGUFValueType(kind)
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            return self.skip_array()
        return self.unpack(_SCALARS[kind])

    def skip_array(self) -> dict:
        """Skip an array's body; keep its element type and length."""
        kind, count = GGUFValueType(self.unpack("<I")), self.unpack("<Q")
        if kind == GGUFValueType.STRING:
            for _ in range(count):
                self.skip_string()
        elif kind == GGUFValueType.ARRAY:
            for _ in range(count):
                self.skip_array()
        else:
            self.pos += count * struct.calcsize(_SCALARS[kind])
            if self.pos > len(self.data):
                raise ValueError("array runs past the end of the file")
        return {"array_of": kind.name, "length": count}


def _tensor_bytes(name: str, shape: tuple[int, ...], kind: int) -> int:
    try:
        block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise ValueError(f"tensor {name} has unknown type {kind}") from None
    return prod(shape) // block_size * type_size


def read_gguf_header(path: Path) -> tuple[int, dict[str, Any], list[tuple[str, tuple[int, ...]]]]:
    """(version, key → value with arrays summarised, [(tensor name, shape)]). Raises ValueError if malformed."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        cursor = _Cursor(data)
        if data[:4] != GGUF_MAGIC:
            raise ValueError("bad magic bytes")
        cursor.pos = 4
        version = cursor.unpack("<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old (2 or later is needed)")
        n_tensors, n_kv = cursor.unpack("<Q"), cursor.unpack("<Q")
        if n_tensors > len(data) or n_kv > len(data):
            raise ValueError("implausible header counts")
        fields = {}
        for _ in range(n_kv):
            key = cursor.string()
            fields[key] = cursor.value(cursor.unpack("<I"))
        tensors, data_end = [], 0
        for _ in range(n_tensors):
            name = cursor.string()
            n_dims = cursor.unpack("<I")
            if n_dims > MAX_DIMS:
                raise ValueError(f"tensor {name} claims {n_dims} dimensions")
            shape = tuple(cursor.unpack("<Q") for _ in range(n_dims))
            kind, offset = cursor.unpack("<I"), cursor.unpack("<Q")
            tensors.append((name, shape))
            data_end = max(data_end, offset + _tensor_bytes(name, shape, kind))
        alignment = fields.get("general.alignment", 32)
        data_start = -(-cursor.pos // alignment) * alignment
        if data_start + data_end > len(data):
            raise ValueError(f"the file is truncated: its tensors need {data_start + data_end} bytes, "
                             f"it has {len(data)}")
        return version, fields, tensors


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
    if not is_gguf(path):
        raise InvalidRequest(tr("%(path)s is not a GGUF file (bad magic bytes). Shuken serves GGUF models.",
                                path=str(path)))
    try:
        version, fields, tensors = read_gguf_header(path)
    except (ValueError, struct.error, OverflowError) as exc:
        raise InvalidRequest(tr("%(path)s could not be read as GGUF: %(error)s", path=str(path),
                                error=str(exc))) from exc

    architecture = fields.get("general.architecture") or "unknown"
    parameters = sum(prod(shape) for _, shape in tensors)
    file_type = fields.get("general.file_type")
    try:
        quantization = LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        quantization = f"type-{file_type}"
    chat_template = fields.get("tokenizer.chat_template")
    vocabulary = fields.get("tokenizer.ggml.tokens")
    return {
        "architecture": architecture,
        "model_name": fields.get("general.name"),
        "parameters": parameters,
        "parameters_human": _human_count(parameters),
        "quantization": quantization,
        "context_length": fields.get(f"{architecture}.context_length"),
        "embedding_length": fields.get(f"{architecture}.embedding_length"),
        "vocabulary_size": vocabulary["length"] if isinstance(vocabulary, dict) else None,
        "chat_template": chat_template,
        "has_chat_template": bool(chat_template),
        "gguf_version": version,
    }
