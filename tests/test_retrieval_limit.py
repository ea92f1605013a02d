"""One retrieval limit: the API's search body, grounded answers' `knowledge.k` and the knowledge service (which the
CLI calls directly) accept exactly the same largest k, and refuse the next one."""

import asyncio

import pytest
from pydantic import ValidationError

from shuken.api.knowledge_routes import SearchRequest
from shuken.errors import InvalidRequest
from shuken.gateway.schemas import MAX_K, KnowledgeOptions
from shuken.governance.identity import Subject


def test_request_schemas_share_the_limit():
    assert SearchRequest(query="q", k=MAX_K).k == MAX_K
    assert KnowledgeOptions(collections=["c"], k=MAX_K).k == MAX_K
    with pytest.raises(ValidationError):
        SearchRequest(query="q", k=MAX_K + 1)
    with pytest.raises(ValidationError):
        KnowledgeOptions(collections=["c"], k=MAX_K + 1)


def test_service_refuses_past_the_limit_before_searching(services):
    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(services.knowledge.search(Subject.operator(), None, "q", k=MAX_K + 1))
    assert refused.value.param == "k" and str(MAX_K) in refused.value.message
