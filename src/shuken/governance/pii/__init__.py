"""PII detection and redaction, pure functions (no web framework, no database): PiiDetector finds typed
spans, `redact` and PiiStreamRedactor replace them with "[TYPE]"."""

from shuken.governance.pii.detector import PiiDetector
from shuken.governance.pii.entities import ENTITY_TYPES, PiiEntity
from shuken.governance.pii.redaction import PiiStreamRedactor, redact

__all__ = ["ENTITY_TYPES", "PiiDetector", "PiiEntity", "PiiStreamRedactor", "redact"]
