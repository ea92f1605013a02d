"""Property: across workspaces, roles, key scopes and group-restricted collections, no knowledge call (list, get,
documents, search in every mode) ever returns another workspace's data or a collection the subject may not read.

Three workspaces share collection names on purpose (a name resolves only inside the caller's workspace). The
texts are ingested once; each example redraws which collections are restricted to which groups, then makes
users and keys through the real services and authenticates each key to its Subject.
(tests/test_knowledge_access.py covers groups inside one workspace in depth; this covers the boundaries.)
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knowledge_support import ingest, sql
from sqlalchemy import text

from shuken.config import Settings
from shuken.errors import Forbidden, NotFound
from shuken.governance.identity import DEFAULT_SCOPES, ROLES, SCOPES, Subject
from shuken.services import Services

pytestmark = pytest.mark.slow  # loads the embedding model

COLLECTIONS = {"ws-a": ("handbook", "payroll", "legal"), "ws-b": ("handbook", "payroll"),
               "ws-c": ("handbook", "research")}
PLACES = [(ws, name) for ws, names in COLLECTIONS.items() for name in names]
NAMES = sorted({name for _, name in PLACES})
GROUPS = ("g1", "g2", "g3")
MODES = ("keyword", "dense", "hybrid")
MARKERS = dict(zip(PLACES, ("zorvanth", "quilbemar", "dextrovin", "plumiquad", "marnivex", "tolbracin",
                            "velquorin")))
_users = itertools.count()


class World:
    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop):
        self.services, self.loop = services, loop
        self.ids = {(ws, name): cid for cid, ws, name in sql(services, "SELECT id, workspace, name FROM collections")}
        # chunk id → (workspace, collection): the truth each returned chunk is checked against
        self.place_of = {chunk: (ws, name) for chunk, ws, name in sql(
            services, "SELECT chunks.id, collections.workspace, collections.name FROM chunks "
                      "JOIN collections ON collections.id = chunks.collection_id")}

    def search(self, subject: Subject, names, query: str, k: int, mode: str):
        return self.loop.run_until_complete(self.services.knowledge.search(subject, names, query, k, mode))

    def restrict(self, grants: dict[tuple[str, str], list[str] | None]) -> None:
        """Rewrite who may read each collection (None: open to its workspace). Done in SQL because the texts
        and vectors stay the same; re-ingesting per example would only re-embed the same text."""
        with self.services.db.session() as session:
            session.execute(text("DELETE FROM collection_grants"))
            for place, groups in grants.items():
                cid = self.ids[place]
                session.execute(text("UPDATE collections SET restricted = :r WHERE id = :id"),
                                {"r": groups is not None, "id": cid})
                for group in groups or ():
                    session.execute(text("INSERT INTO collection_grants (collection_id, group_name) "
                                         "VALUES (:id, :g)"), {"id": cid, "g": group})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("isolation-home")
    services = Services.open(Settings(home=home / "shuken"))
    loop = asyncio.new_event_loop()
    try:
        services.registry.seed_bundled()
        for ws, names in COLLECTIONS.items():
            services.directory.create_workspace(ws)
            operator = Subject.operator(ws)
            for name in names:
                marker = MARKERS[(ws, name)]
                services.knowledge.create_collection(operator, name)
                path = home / f"{ws}-{name}.txt"
                path.write_text(f"The {marker} register lists every approval for {name}. "
                                f"Ask the {marker} desk before changing travel or budget rules.\n")
                view = loop.run_until_complete(ingest(services, name, [(f"{name}.txt", path)], operator))
                assert view["totals"]["indexed"] == 1, view
        built = World(services, loop)
        assert sorted(set(built.place_of.values())) == sorted(PLACES)
        yield built
    finally:
        loop.run_until_complete(services.host.close())
        loop.close()
        services.close()


def may_read_knowledge(role: str, scopes: frozenset[str]) -> bool:
    return role in ("owner", "admin", "member", "viewer") and bool(scopes & {"knowledge:read", "admin"})


def readable(ws: str, role: str, scopes: frozenset[str], groups: set[str], grants) -> set[tuple[str, str]]:
    """The rule, written down independently of the code: own workspace only; a role that reads knowledge and a
    key that carries knowledge:read (or admin); admins read everything there, others open collections and those
    shared with one of their groups."""
    if not may_read_knowledge(role, scopes):
        return set()
    return {place for place in PLACES if place[0] == ws and (
        role in ("owner", "admin") or grants[place] is None or set(grants[place]) & groups)}


identities = st.fixed_dictionaries({
    "ws": st.sampled_from(sorted(COLLECTIONS)),
    "role": st.sampled_from(ROLES),
    "groups": st.sets(st.sampled_from(GROUPS + ("elsewhere",)), max_size=3),
    "scopes": st.none() | st.sets(st.sampled_from(SCOPES), min_size=1),
    # The same person may belong to a second workspace, with another role and groups.
    "also": st.none() | st.tuples(st.sampled_from(sorted(COLLECTIONS)), st.sampled_from(ROLES),
                                  st.sets(st.sampled_from(GROUPS), max_size=3)),
    "mode": st.sampled_from(MODES),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grants=st.fixed_dictionaries({place: st.none() | st.lists(st.sampled_from(GROUPS), unique=True)
                                     for place in PLACES}),
       people=st.lists(identities, min_size=1, max_size=4))
def test_no_knowledge_call_crosses_a_workspace_or_a_group_restriction(world, grants, people):
    world.restrict(grants)
    svc = world.services
    everything = " ".join(MARKERS.values())
    for person in people:
        ws, role, groups = person["ws"], person["role"], set(person["groups"])
        email = f"user{next(_users)}@example.org"
        svc.directory.create_user(Subject.operator(ws), email, role, sorted(groups))
        if person["also"] and person["also"][0] != ws:
            other_ws, other_role, other_groups = person["also"]
            svc.directory.create_user(Subject.operator(other_ws), email, other_role, sorted(other_groups))
        _key, secret = svc.keys.create(Subject.operator(ws), email, "k", sorted(person["scopes"] or ()) or None)

        subject = svc.keys.authenticate(secret)
        scopes = frozenset(person["scopes"] or DEFAULT_SCOPES)
        assert (subject.workspace, subject.role, subject.groups, subject.scopes) == (ws, role, groups, scopes)
        allowed = readable(ws, role, scopes, groups, grants)
        reads = may_read_knowledge(role, scopes)

        listed = svc.knowledge.list_collections(subject)
        assert {(c["workspace"], c["name"]) for c in listed} == allowed  # exactly, not merely a subset

        mode = person["mode"]
        for name in NAMES:
            if (ws, name) in allowed:
                assert svc.knowledge.get_collection(subject, name)["workspace"] == ws
                assert [d["name"] for d in svc.knowledge.list_documents(subject, name)] == [f"{name}.txt"]
                hits = world.search(subject, [name], MARKERS[(ws, name)], 5, mode)
                assert hits and {world.place_of[h.chunk_id] for h in hits} == {(ws, name)}
                continue
            # Not readable: refused outright, NotFound exactly when the caller's workspace has no such name
            # (a search by someone who may not read knowledge at all is refused before names are looked up).
            expected = Forbidden if name in COLLECTIONS[ws] else NotFound
            for call in (lambda: svc.knowledge.get_collection(subject, name),
                         lambda: svc.knowledge.list_documents(subject, name)):
                with pytest.raises(expected):
                    call()
            with pytest.raises(expected if reads else Forbidden):
                world.search(subject, [name], everything, 50, mode)

        # "Everything I may read", with every marker in the query and k above the corpus size: the answer is
        # every chunk of exactly the allowed collections, in every mode.
        if not reads:
            with pytest.raises(Forbidden):
                world.search(subject, None, everything, 50, mode)
            continue
        hits = world.search(subject, None, everything, 50, mode)
        assert {world.place_of[h.chunk_id] for h in hits} == allowed
        assert {h.collection for h in hits} == {name for _, name in allowed}
