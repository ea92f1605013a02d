"""Permission is part of every retrieval path: two group identities, a restricted collection for each and
one open collection, searched in every mode, with explicit collections and with "all I may read".

The collections deliberately share text (dedup is per collection), so a leak would match the query just as
well as the allowed chunks do; the admin's view of the same query proves the hidden chunks are findable.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from fixtures.documents import SAMPLES, make_text
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from knowledge_support import ADMIN, ingest, sql

from shuken.config import Settings
from shuken.errors import Forbidden, NotFound
from shuken.governance.identity import Subject
from shuken.knowledge.languages import analyze_query
from shuken.services import Services

pytestmark = pytest.mark.slow  # loads the embedding model

REVIEW, TRAVEL, ARCHIVE = SAMPLES["en"]
FINANCE = Subject(role="member", user_id=101, key_id=101, groups=frozenset({"finance"}))
LEGAL = Subject(role="member", user_id=102, key_id=102, groups=frozenset({"legal"}))
IDENTITIES = {"finance": FINANCE, "legal": LEGAL}
READABLE = {"finance": {"finance-docs", "open-docs"}, "legal": {"legal-docs", "open-docs"}}
FORBIDDEN = {"finance": "legal-docs", "legal": "finance-docs"}
NAMES = ("finance-docs", "legal-docs", "open-docs")
MODES = ("keyword", "dense", "hybrid")
CORPUS = {  # collection → {document name: paragraphs}; text shared across collections on purpose
    "finance-docs": {"expenses.txt": [TRAVEL, REVIEW, SAMPLES["ja"][1]],
                     "library.txt": [SAMPLES["zh"][0], SAMPLES["en"][2]]},
    "legal-docs": {"privacy.txt": [SAMPLES["ar"][1], TRAVEL, ARCHIVE],
                   "leave.txt": [SAMPLES["fr"][1], SAMPLES["ja"][1], SAMPLES["zh"][1]]},
    "open-docs": {"meeting.txt": [REVIEW, SAMPLES["fr"][0]], "welcome.txt": [SAMPLES["hi"][0], SAMPLES["ja"][0]]},
}
_WORDS = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]+")


def candidate_words(text: str) -> set[str]:
    """Words of space-separated scripts, and two- and three-character runs of CJK text."""
    words = {w for w in _WORDS.findall(text) if not _CJK.search(w)}
    for run in _CJK.findall(text):
        words.update(run[i:i + n] for n in (2, 3) for i in range(len(run) - n + 1))
    return words


class Corpus:
    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop):
        self.services = services
        self.loop = loop
        self.collection_of = dict(sql(services, "SELECT chunks.id, collections.name FROM chunks "
                                                "JOIN collections ON collections.id = chunks.collection_id"))
        self.terms: dict[str, set[str]] = {name: set() for name in NAMES}  # what each keyword index holds
        for chunk_id, terms in sql(services, "SELECT rowid, terms FROM chunk_terms"):
            self.terms[self.collection_of[chunk_id]].update(terms.split())
        # Query words that certainly match a collection's keyword index (stop words and the like drop out).
        self.vocabulary: dict[str, list[str]] = {}
        for name, documents in CORPUS.items():
            words = set().union(*(candidate_words(p) for paragraphs in documents.values() for p in paragraphs))
            self.vocabulary[name] = sorted(w for w in words if set(analyze_query(w)) & self.terms[name])
        self.all_words = sorted(set().union(*self.vocabulary.values()))

    def search(self, subject: Subject, collections, query: str, k: int, mode: str):
        return self.loop.run_until_complete(self.services.knowledge.search(subject, collections, query, k, mode))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    home = tmp_path_factory.mktemp("access-home")
    services = Services.open(Settings(home=home / "shuken"))
    loop = asyncio.new_event_loop()
    try:
        services.registry.seed_bundled()
        knowledge = services.knowledge
        for name, documents in CORPUS.items():
            group = name.removesuffix("-docs")
            knowledge.create_collection(ADMIN, name, groups=[group] if group in IDENTITIES else [])
            files = [(doc, make_text(home / f"{name}-{doc}", paragraphs)) for doc, paragraphs in documents.items()]
            view = loop.run_until_complete(ingest(services, name, files))
            assert view["totals"]["indexed"] == len(files), view
        built = Corpus(services, loop)
        assert len(built.collection_of) < 50, "the admin cross-check below relies on k=50 seeing every chunk"
        assert all(len(words) >= 20 for words in built.vocabulary.values()), built.vocabulary
        yield built
    finally:
        loop.run_until_complete(services.host.close())
        loop.close()
        services.close()


def check_hits(corpus: Corpus, identity: str, hits) -> None:
    for hit in hits:
        # Both the label and the chunk's real collection in the database.
        assert hit.collection in READABLE[identity], (identity, hit.collection, hit.text[:60])
        assert corpus.collection_of[hit.chunk_id] in READABLE[identity]


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("mode", MODES)
def test_every_search_path_stays_inside_what_the_identity_may_read(corpus, identity, mode):
    subject = IDENTITIES[identity]
    query = "travel policy approval booking receipts 経費 精算"
    everything = corpus.search(ADMIN, None, query, 50, mode)
    assert FORBIDDEN[identity] in {hit.collection for hit in everything}  # there is something to leak
    allowed = {hit.chunk_id for hit in everything if hit.collection in READABLE[identity]}
    assert allowed

    mine = corpus.search(subject, None, query, 50, mode)  # "all I may read"
    check_hits(corpus, identity, mine)
    assert {hit.chunk_id for hit in mine} == allowed  # filtered inside the query, not after a top-k cut
    for requested in ([identity + "-docs"], ["open-docs"], [identity + "-docs", "open-docs"]):
        hits = corpus.search(subject, requested, query, 50, mode)
        check_hits(corpus, identity, hits)
        assert {hit.chunk_id for hit in hits} == {c for c in allowed if corpus.collection_of[c] in requested}
    for k in (1, 3):
        small = corpus.search(subject, None, query, k, mode)
        assert len(small) == min(k, len(allowed))
        check_hits(corpus, identity, small)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_naming_a_forbidden_collection_is_refused(corpus, identity):
    subject = IDENTITIES[identity]
    forbidden = FORBIDDEN[identity]
    for requested in ([forbidden], [identity + "-docs", forbidden], ["open-docs", forbidden]):
        for mode in MODES:
            with pytest.raises(Forbidden) as refused:
                corpus.search(subject, requested, "travel policy", 5, mode)
            assert refused.value.status == 403 and refused.value.code == "collection_forbidden"
            assert forbidden in refused.value.message
    with pytest.raises(NotFound):
        corpus.search(subject, ["no-such-collection"], "travel policy", 5, "hybrid")
    knowledge = corpus.services.knowledge
    assert {c["name"] for c in knowledge.list_collections(subject)} == READABLE[identity]
    with pytest.raises(Forbidden):
        knowledge.list_documents(subject, forbidden)
    with pytest.raises(Forbidden):
        knowledge.get_collection(subject, forbidden)
    # Another group's ingestion job is not even acknowledged.
    [job_id] = [row[0] for row in sql(corpus.services, "SELECT ingest_jobs.id FROM ingest_jobs JOIN collections "
                                      "ON collections.id = ingest_jobs.collection_id WHERE collections.name = :n",
                                      n=forbidden)]
    with pytest.raises(NotFound):
        knowledge.job(subject, job_id)
    assert knowledge.job(ADMIN, job_id)["collection"] == forbidden


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_query_ever_returns_a_chunk_the_identity_may_not_read(corpus, data):
    identity = data.draw(st.sampled_from(sorted(IDENTITIES)), label="identity")
    forbidden = FORBIDDEN[identity]
    # At least one word the forbidden collection certainly matches, plus any words of the corpus.
    words = data.draw(st.lists(st.sampled_from(corpus.vocabulary[forbidden]), min_size=1, max_size=3))
    words += data.draw(st.lists(st.sampled_from(corpus.all_words), max_size=3))
    query = " ".join(data.draw(st.permutations(words)))
    mode = data.draw(st.sampled_from(MODES), label="mode")
    # A word can analyse differently inside a mixed-script query (kana makes the whole query Japanese, and a
    # Chinese-only word then yields other terms): keep keyword queries that still match the hidden collection.
    assume(mode != "keyword" or set(analyze_query(query)) & corpus.terms[forbidden])
    k = data.draw(st.integers(min_value=1, max_value=50), label="k")
    requested = data.draw(st.none() | st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True),
                          label="collections")

    # The hidden chunks are really there for this query: an administrator finds them.
    admin_hits = corpus.search(ADMIN, None, query, 50, mode)
    assert forbidden in {hit.collection for hit in admin_hits}, query

    subject = IDENTITIES[identity]
    if requested is not None and forbidden in requested:
        with pytest.raises(Forbidden):
            corpus.search(subject, requested, query, k, mode)
        return
    hits = corpus.search(subject, requested, query, k, mode)
    check_hits(corpus, identity, hits)
    if requested is not None:
        assert {hit.collection for hit in hits} <= set(requested)
    assert len(hits) <= k
    assert len({hit.chunk_id for hit in hits}) == len(hits)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(min_size=1, max_size=60).filter(str.strip)
       | st.lists(st.sampled_from(['"', "*", "NEAR(", ")", "-", "^", ":", "OR", "AND", "NOT", "terms", "{", "}",
                                   "travel", "経費", "\x00", "'", "\\"]), min_size=1, max_size=6).map(" ".join))
def test_any_query_text_is_safe_in_the_keyword_index(corpus, query):
    """Query text reaches FTS5 MATCH only as quoted terms: no syntax error, no widening of the search."""
    hits = corpus.search(FINANCE, None, query, 50, "keyword")
    check_hits(corpus, "finance", hits)
    admin = {hit.chunk_id for hit in corpus.search(ADMIN, None, query, 50, "keyword")}
    assert {hit.chunk_id for hit in hits} == {c for c in admin if corpus.collection_of[c] in READABLE["finance"]}


def test_relevance_threshold_depends_on_whether_the_passage_is_in_the_question_language():
    """Translations score lower with the multilingual embedder, so a passage in another language than the
    question is held to the cross-lingual threshold; one in the same language to the stricter one."""
    from shuken.knowledge.answering import relevant_hits
    from shuken.knowledge.retrieval import Hit

    japanese = Hit(1, 0.5, similarity=0.78, language="ja")
    english = Hit(2, 0.4, similarity=0.78, language="en")
    unknown = Hit(3, 0.3, similarity=None, language="en")
    kept = relevant_hits([japanese, english, unknown], "How many days of paid leave do I get?",
                         same_language=0.80, cross_lingual=0.75)
    assert kept == [japanese]
    kept = relevant_hits([japanese, english], "有給休暇は何日ですか", same_language=0.80, cross_lingual=0.75)
    assert kept == [english]
