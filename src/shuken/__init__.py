"""Shuken: a self-hosted, sovereign AI platform (gateway, registry, keys)."""

__version__ = "0.1.0"
