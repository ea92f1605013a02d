"""Inference backends behind one protocol (engines.base), discovered through the `shuken.engines` entry points."""
