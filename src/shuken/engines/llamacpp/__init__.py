"""llama.cpp in-process engine (entry point `llamacpp`)."""

from shuken.engines.llamacpp.engine import LlamaCppEngine

__all__ = ["LlamaCppEngine"]
