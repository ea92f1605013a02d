"""Answers grounded in a workspace's documents: retrieve for the last user message, keep only passages
above the relevance threshold, then either generate with numbered sources or say plainly that nothing
relevant was found (without asking the model, which would invent an answer)."""

from __future__ import annotations

from shuken.gateway.schemas import ChatCompletionRequest, ChatMessage
from shuken.gateway.answers import AnswerStream
from shuken.gateway.gateway import Gateway
from shuken.governance.identity import Subject
from shuken.knowledge.grounding import (
    CitationFilter, citations, grounded_messages, last_user_text, not_found_answer,
)
from shuken.knowledge.languages.detect import detect_language
from shuken.knowledge.retrieval import Hit
from shuken.knowledge.facade import KnowledgeService


class CitationDecorator:
    def __init__(self, hits: list[Hit]):
        self.hits = hits
        self.filter = CitationFilter(len(hits))

    def feed(self, text: str) -> str:
        return self.filter.feed(text)

    def flush(self) -> str:
        return self.filter.flush()

    def annotate(self, payload: dict) -> None:
        payload["citations"] = citations(self.hits, self.filter.cited)


def relevant_hits(hits: list[Hit], question: str, same_language: float, cross_lingual: float) -> list[Hit]:
    """Passages similar enough to ground an answer. A passage in another language than the question has its
    own threshold: the multilingual embedder scores even exact translations lower, so an operator who wants
    answers across languages lowers that one without loosening the same-language check."""
    language = detect_language(question)
    return [hit for hit in hits if hit.similarity is not None
            and hit.similarity >= (same_language if hit.language == language else cross_lingual)]


async def grounded_answer(gateway: Gateway, knowledge: KnowledgeService, subject: Subject,
                          request: ChatCompletionRequest, client: str, endpoint: str = "chat",
                          observer=None, decorate=lambda inner: inner) -> dict | AnswerStream:
    """`observer` is told how the call ended (governance); `decorate` wraps the citation decorator (e.g. with
    PII redaction of the answer)."""
    options = request.knowledge
    if options is None:
        raise ValueError("a grounded answer needs the request's knowledge options")
    messages = [m.for_template() for m in request.messages]
    question = last_user_text(messages)
    hits = await knowledge.search(subject, options.collections, question, options.k) if question.strip() else []
    relevant = relevant_hits(hits, question, knowledge.settings.min_relevance,
                             knowledge.settings.min_relevance_cross_lingual)
    if not relevant:
        return await gateway.fixed_reply(request, not_found_answer(question), endpoint,
                                         decorate(CitationDecorator([])), observer)
    grounded = request.model_copy(update={
        "messages": [ChatMessage.model_validate(m) for m in grounded_messages(messages, relevant)],
        "knowledge": None,
    })
    return await gateway.generate(grounded, client, endpoint, decorate(CitationDecorator(relevant)), observer)
