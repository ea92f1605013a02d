"""The one path every generated answer takes, for the OpenAI API and the web chat alike: the governor begins
the call (permission, policy), PII is handled before the model, the answer is grounded in documents when
collections are named, and the answer's decorators (citations, PII redaction) apply."""

from __future__ import annotations

import asyncio

from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest
from shuken.gateway.gateway import Gateway
from shuken.governance.identity import Subject
from shuken.governance.governor import answer_decorator, for_model
from shuken.knowledge.answering import grounded_answer


def client_name(subject: Subject) -> str:
    """Who the fair queue balances between: each key, or each signed-in user."""
    return f"key-{subject.key_id}" if subject.key_id is not None else f"user-{subject.user_id}"


def _begin(governor, subject: Subject, endpoint: str, messages: list[dict], body):
    """The policy read and PII handling before the model, in one trip off the event loop (each trip costs a
    thread hand-over before the first token)."""
    call = governor.begin(subject, endpoint, messages)
    return call, for_model(call.policy, body)  # PII detection may take a while


async def governed_generation(services, gateway: Gateway, subject: Subject,
                              body: ChatCompletionRequest | CompletionRequest, endpoint: str):
    """The awaitable that produces the answer (a dict, or an `AnswerStream` of events when `body.stream`)."""
    messages = [m.for_template() for m in body.messages] if hasattr(body, "messages") \
        else [{"role": "user", "content": body.single_prompt}]
    call, body = await asyncio.to_thread(_begin, services.governor, subject, endpoint, messages, body)
    if isinstance(body, ChatCompletionRequest) and body.knowledge is not None:
        return grounded_answer(gateway, services.knowledge, subject, body, client_name(subject), endpoint,
                               observer=call, decorate=lambda inner: answer_decorator(call.policy, inner))
    return gateway.generate(body, client=client_name(subject), endpoint=endpoint,
                            decorator=answer_decorator(call.policy), observer=call)
