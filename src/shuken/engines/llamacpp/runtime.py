"""Thin ctypes layer over llama.cpp: load a model, make a multi-sequence context, tokenize, decode batches.

Loading, decode() and close() run on the llama thread (worker.py); tokenizing only reads the
vocabulary and may run anywhere.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import llama_cpp

from shuken.errors import Unavailable
from shuken.localisable import tr

log = logging.getLogger("shuken.llamacpp")
_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


@contextmanager
def native_stderr_to_log():
    """Capture what C code writes to fd 2 while loading (llama.cpp prints its whole model dump there).

    llama_log_set() is not enough: with this build the loader writes to fd 2 regardless (measured).

    Our own JSON log lines written meanwhile are passed through; llama.cpp's lines become DEBUG
    records, except those that mention an error, which become warnings.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for raw in capture.read().decode("utf-8", errors="replace").splitlines():
                if raw.startswith("{"):
                    sys.stderr.write(raw + "\n")
                elif raw.strip():
                    log.log(logging.WARNING if "error" in raw.lower() else logging.DEBUG, raw.rstrip())


@dataclass(frozen=True)
class BatchEntry:
    token: int
    pos: int
    seq_id: int
    wants_logits: bool


class LlamaRuntime:
    def __init__(self, path: str, *, sequences: int, context_per_sequence: int, batch_tokens: int, threads: int):
        _init_backend()
        with native_stderr_to_log():
            self._load(path, sequences, context_per_sequence, batch_tokens, threads)

    def _load(self, path: str, sequences: int, context_per_sequence: int, batch_tokens: int, threads: int) -> None:
        model_params = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), model_params)
        if not self.model:
            raise Unavailable(tr("llama.cpp could not load %(path)s; is it a valid GGUF for this llama.cpp version?",
                                 path=str(path)))
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        trained = llama_cpp.llama_model_n_ctx_train(self.model)
        self.context_per_sequence = min(context_per_sequence, trained) if trained > 0 else context_per_sequence
        self.batch_tokens = max(batch_tokens, sequences)

        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = self.context_per_sequence * sequences
        ctx_params.n_batch = self.batch_tokens
        ctx_params.n_ubatch = self.batch_tokens
        ctx_params.n_seq_max = sequences
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        ctx_params.kv_unified = False  # one KV stream per sequence: attention cost scales with its own length
        ctx_params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(self.model, ctx_params)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            raise Unavailable(tr("llama.cpp could not create a context of %(tokens)s tokens for %(path)s.",
                                 tokens=ctx_params.n_ctx, path=str(path)))
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.sequences = sequences
        self._batch = llama_cpp.llama_batch_init(self.batch_tokens, 0, 1)
        self.add_bos = llama_cpp.llama_vocab_get_add_bos(self.vocab)
        self.bos_text = self._special_text(llama_cpp.llama_vocab_bos(self.vocab))
        self.eos_text = self._special_text(llama_cpp.llama_vocab_eos(self.vocab))

    # -- vocabulary --------------------------------------------------------------------------------
    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.piece(token, special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self.vocab, data, len(data), buffer, capacity, add_special, parse_special)
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(self.vocab, data, len(data), buffer, capacity, add_special,
                                             parse_special)
        return list(buffer[:count])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, 64, 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    # -- decoding (worker thread only) ---------------------------------------------------------------
    def decode(self, entries: list[BatchEntry]) -> None:
        batch = self._batch
        for index, entry in enumerate(entries):
            batch.token[index] = entry.token
            batch.pos[index] = entry.pos
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = entry.seq_id
            batch.logits[index] = entry.wants_logits
        batch.n_tokens = len(entries)
        status = llama_cpp.llama_decode(self.ctx, batch)
        if status != 0:
            raise Unavailable(tr("llama_decode failed with status %(status)s; the request was not completed.",
                                 status=status))

    def forget_sequence(self, seq_id: int) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self.ctx)
            llama_cpp.llama_model_free(self.model)
            self.ctx = None
