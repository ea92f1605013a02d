"""A workspace's PII actions at each stage: before the model sees a prompt, in answers (streamed or not), and
before content is kept (audit content). Pure parts in-process; the model-input stage through a real server."""

from __future__ import annotations

import pytest
from conftest import run_cli

from shuken.gateway.schemas import ChatCompletionRequest
from shuken.governance.events import EventBus, RequestServed
from shuken.governance.identity import Subject
from shuken.governance.policy import WorkspacePolicy
from shuken.governance.governor import ChainedDecorator, ServedCall, answer_decorator, for_model

EMAIL = "hanako.yamada-contracts@example.co.jp"
CARD = "4111 1111 1111 1111"


def chat(text: str) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]})


def test_prompts_reach_the_model_redacted_only_when_the_policy_says_so():
    request = chat(f"Mail {EMAIL} the invoice paid with {CARD}.")
    assert for_model(WorkspacePolicy(), request) is request  # default: the model sees what the user wrote
    redacted = for_model(WorkspacePolicy(pii_before_model="redact"), request)
    assert redacted.messages[1].content == "Mail [EMAIL_ADDRESS] the invoice paid with [CREDIT_CARD]."
    assert redacted.messages[0].content == "Be brief." and request.messages[1].content.startswith("Mail hanako")
    flag_only = for_model(WorkspacePolicy(pii_before_model="flag"), request)
    assert flag_only.messages[1].content == request.messages[1].content
    parts = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": f"Card {CARD}"}, {"type": "text", "text": "thanks"}]}]})
    redacted_parts = for_model(WorkspacePolicy(pii_before_model="redact"), parts).messages[0].content
    assert [p.text for p in redacted_parts] == ["Card [CREDIT_CARD]", "thanks"]


class Upper:
    """A stand-in inner decorator (like citations): uppercases, and annotates."""

    def feed(self, text):
        return text.upper()

    def flush(self):
        return "!"

    def annotate(self, payload):
        payload["inner"] = True


@pytest.mark.parametrize("piece", [1, 3, 7, 1000])
def test_answers_are_redacted_as_they_stream_after_the_inner_decorator(piece):
    answer = f"Write to {EMAIL} today."
    assert answer_decorator(WorkspacePolicy()) is None
    inner = Upper()
    assert answer_decorator(WorkspacePolicy(), inner) is inner
    decorator = answer_decorator(WorkspacePolicy(pii_in_answers="redact"), Upper())
    assert isinstance(decorator, ChainedDecorator)
    out = "".join(decorator.feed(answer[i:i + piece]) for i in range(0, len(answer), piece)) + decorator.flush()
    assert out == "WRITE TO [EMAIL_ADDRESS] TODAY.!"
    payload = {}
    decorator.annotate(payload)
    assert payload == {"inner": True}


def test_kept_content_is_redacted_before_logging_and_flags_never_carry_values():
    bus = EventBus()
    seen: list[RequestServed] = []
    bus.subscribe(lambda event, _session: seen.append(event))
    messages = [{"role": "user", "content": f"My card is {CARD}"}]
    for policy in (WorkspacePolicy(audit_content=True, pii_before_logging="redact"),
                   WorkspacePolicy(pii_before_logging="flag", pii_in_answers="flag")):
        call = ServedCall(bus, Subject(user_id=7, key_id=3), policy, "chat", "2026-11-23T00:00:00+00:00", "r1",
                          prompt_messages=messages)
        call.finished("m", 200, 5, 4, f"Card {CARD} noted")
        call.finished("m", 200, 5, 4, "reported twice")  # only the first report counts
    bus.flush()
    bus.close()
    kept, flagged = seen
    assert kept.content == {"messages": [{"role": "user", "content": "My card is [CREDIT_CARD]"}],
                            "completion": "Card [CREDIT_CARD] noted"}
    assert flagged.content is None and flagged.details["pii_flags_logging"] == {"CREDIT_CARD": 1}
    assert flagged.details["pii_flags_answers"] == {"CREDIT_CARD": 1} and CARD not in repr(flagged.details)
    assert (kept.actor, kept.prompt_tokens, kept.completion_tokens, kept.key_id) == ("user:7/key:3", 5, 4, 3)


@pytest.mark.slow
def test_the_model_is_sent_the_redacted_prompt(server):
    """Observable from outside: with redaction before the model, a prompt costs exactly as many tokens as the
    already-redacted text does without it."""
    run_cli(server.home, "workspaces", "create", "pii-ws")
    run_cli(server.home, "users", "create", "pii@example.org", "-w", "pii-ws")
    key = run_cli(server.home, "keys", "create", "-w", "pii-ws", "--user", "pii@example.org", "--name", "pii")
    client = server.client(api_key=key.stdout.strip())

    def prompt_tokens(text):
        reply = client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=1,
                                               messages=[{"role": "user", "content": text}])
        return reply.usage.prompt_tokens

    original = f"Please forward this to {EMAIL} now."
    plain = prompt_tokens(original)
    as_redacted = prompt_tokens("Please forward this to [EMAIL_ADDRESS] now.")
    assert plain != as_redacted
    run_cli(server.home, "workspaces", "set", "-w", "pii-ws", "pii_before_model=redact")
    assert prompt_tokens(original) == as_redacted
