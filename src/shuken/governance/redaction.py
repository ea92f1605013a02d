"""Applies a workspace's PII actions at each stage: before logging (audit content, training data), before the
model sees a prompt, and in answers. The detection itself is `governance.pii` (pure)."""

from __future__ import annotations

import threading
from collections import Counter
from functools import lru_cache

from shuken.governance.policy import WorkspacePolicy

STAGES = {"logging": "pii_before_logging", "model": "pii_before_model", "answers": "pii_in_answers"}
_lock = threading.Lock()


@lru_cache(maxsize=8)
def _detector(entity_types: tuple[str, ...] | None):
    from shuken.governance.pii import PiiDetector

    return PiiDetector(entity_types)


def detector_for(policy: WorkspacePolicy):
    with _lock:
        return _detector(tuple(sorted(policy.pii_entities)) if policy.pii_entities else None)


def action(policy: WorkspacePolicy, stage: str) -> str:
    return getattr(policy, STAGES[stage])


def redact_for(policy: WorkspacePolicy, stage: str, text: str) -> str:
    """The text with PII replaced by its type (e.g. "[EMAIL_ADDRESS]") if the stage's action is `redact`."""
    if action(policy, stage) != "redact" or not text:
        return text
    from shuken.governance.pii import redact

    return redact(text, detector_for(policy).detect(text))


def redact_content(policy: WorkspacePolicy, stage: str, content):
    """A chat message's content (a string, or a list of parts whose text parts are redacted) for the stage."""
    if isinstance(content, str):
        return redact_for(policy, stage, content)
    if isinstance(content, list):
        return [{**part, "text": redact_for(policy, stage, part["text"])}
                if isinstance(part, dict) and isinstance(part.get("text"), str) else part for part in content]
    return content


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def findings(policy: WorkspacePolicy, stage: str, text: str) -> dict[str, int]:
    """Entity types and counts found, when the stage's action is `flag` or `redact` (never the values)."""
    if action(policy, stage) == "off" or not text:
        return {}
    return dict(Counter(entity.type for entity in detector_for(policy).detect(text)))
