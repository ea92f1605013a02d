"""Model registry: manifests (hash, size, format, GGUF metadata, licence, origin) and the bundled models."""

from shuken.registry.manifest import ModelManifest
from shuken.registry.models import ModelRegistry

__all__ = ["ModelManifest", "ModelRegistry"]
