"""Governance around one served request: the workspace's PII actions on the prompt and the answer, and the
`RequestServed` event (audit record, token quota, consented training capture) when the call ends.

Pure glue between the gateway and the event bus; it never blocks the event loop on the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from shuken.governance import events as ev
from shuken.governance.authz import Resource, require
from shuken.governance.identity import Subject
from shuken.governance.policy import WorkspacePolicy
from shuken.governance.redaction import action, detector_for, findings, message_text, redact_content, redact_for


class ChainedDecorator:
    """Two response decorators in a row (e.g. citation markers, then PII redaction of the answer)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def feed(self, text: str) -> str:
        return self.second.feed(self.first.feed(text))

    def flush(self) -> str:
        return self.second.feed(self.first.flush()) + self.second.flush()

    def annotate(self, payload: dict) -> None:
        for decorator in (self.first, self.second):
            annotate = getattr(decorator, "annotate", None)
            if annotate:
                annotate(payload)


class AnswerRedactor:
    def __init__(self, policy: WorkspacePolicy):
        from shuken.governance.pii import PiiStreamRedactor

        self.stream = PiiStreamRedactor(detector_for(policy))

    def feed(self, text: str) -> str:
        return self.stream.feed(text)

    def flush(self) -> str:
        return self.stream.flush()

    def annotate(self, payload: dict) -> None:
        pass


@dataclass
class ServedCall:
    """Handed to the gateway as its observer: it keeps the text only if policy needs it, and reports once."""

    bus: ev.EventBus
    subject: Subject
    policy: WorkspacePolicy
    endpoint: str
    started_at: str
    request_id: str
    prompt_messages: list | None = None
    reported: bool = False

    @property
    def wants_text(self) -> bool:
        return self.policy.audit_content or self.policy.training_capture == "opt-in"

    def finished(self, model: str, status: int, prompt_tokens: int = 0, completion_tokens: int = 0,
                 completion: str | None = None) -> None:
        if self.reported:
            return
        self.reported = True
        # Built on the event thread: PII detection can take hundreds of milliseconds (GiNZA on Japanese text).
        self.bus.emit_later(lambda: self._event(model, status, prompt_tokens, completion_tokens, completion))

    def _event(self, model: str, status: int, prompt_tokens: int, completion_tokens: int,
               completion: str | None) -> ev.RequestServed:
        outcome = "success" if status == 200 else ("cancelled" if status == 499 else "failure")
        pii_flags: dict[str, dict[str, int]] = {}
        if action(self.policy, "answers") == "redact" and completion:
            completion = redact_for(self.policy, "answers", completion)  # never keep what users were not shown
        content = None
        if self.policy.audit_content and self.prompt_messages is not None:
            content = {"messages": [logged_message(self.policy, m) for m in self.prompt_messages],
                       "completion": redact_for(self.policy, "logging", completion or "")}
        prompt_text = " ".join(message_text(m) for m in self.prompt_messages or [])
        found: dict[str, dict[str, int]] = {}  # text → findings: the prompt is flagged for two stages, detected once
        for stage, text in (("logging", prompt_text), ("model", prompt_text), ("answers", completion or "")):
            if action(self.policy, stage) == "flag":  # types and counts only, never the values
                if text not in found:
                    found[text] = findings(self.policy, stage, text)
                if found[text]:
                    pii_flags[stage] = dict(found[text])
        return ev.RequestServed(
            workspace=self.subject.workspace, actor=self.subject.actor, resource=f"model:{model}",
            outcome=outcome, model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            endpoint=self.endpoint, status=status, request_id=self.request_id, started_at=self.started_at,
            pii_flags=pii_flags, content=content, content_user_id=self.subject.user_id, key_id=self.subject.key_id,
            captured_messages=self.prompt_messages if self.policy.training_capture == "opt-in" else None,
            captured_completion=completion)


def logged_message(policy: WorkspacePolicy, message: dict) -> dict:
    """A chat message as it may be kept (audit content, captured training data): redacted if the policy redacts
    before logging."""
    return {**message, "content": redact_content(policy, "logging", message.get("content"))}


class RequestGovernor:
    """Begins every served call: checks `chat` is allowed and reads the workspace's policy once."""

    def __init__(self, directory, bus: ev.EventBus):
        self.directory = directory
        self.bus = bus

    def begin(self, subject: Subject, endpoint: str, messages: list[dict] | None) -> ServedCall:
        require("chat", Resource("model", subject.workspace), subject)
        policy = self.directory.policy(subject.workspace)
        return ServedCall(self.bus, subject, policy, endpoint, datetime.now(timezone.utc).isoformat(),
                          uuid.uuid4().hex[:16], prompt_messages=messages)

    def embedding_call(self, subject: Subject) -> ServedCall:
        return self.begin(subject, "embeddings", None)


def for_model(policy: WorkspacePolicy, request):
    """The request as the model should see it: PII in prompts replaced if the workspace redacts before the model
    (chat messages' text, or a completion prompt)."""
    if action(policy, "model") != "redact":
        return request
    if hasattr(request, "messages"):
        messages = [type(m).model_validate({**m.model_dump(exclude_none=True),
                                            "content": redact_content(policy, "model", m.model_dump(
                                                exclude_none=True).get("content"))})
                    for m in request.messages]
        return request.model_copy(update={"messages": messages})
    prompt = request.prompt
    redacted = [redact_for(policy, "model", p) for p in prompt] if isinstance(prompt, list) \
        else redact_for(policy, "model", prompt)
    return request.model_copy(update={"prompt": redacted})


def answer_decorator(policy: WorkspacePolicy, inner=None):
    """The decorator for the answer text: the given one (citations), followed by PII redaction if configured."""
    if action(policy, "answers") != "redact":
        return inner
    redactor = AnswerRedactor(policy)
    return ChainedDecorator(inner, redactor) if inner is not None else redactor
