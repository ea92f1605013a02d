"""Who may read which collection, expressed as SQL so every retrieval path composes it into its own query.

There is exactly one rule, `readable_condition(subject)`; the allowed-collections selection that keyword
search (inside its FTS5 MATCH) and vector search take, document listings, citations and single-collection
checks all build on it. Nothing searches first and filters later.
The rule first asks `governance.authz.permits` (role and key scope), so retrieval applies the same rules as
every other service call, inside its own query.
"""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import Session

from shuken.errors import Forbidden, NotFound
from shuken.governance.authz import Decision, permits
from shuken.governance.identity import Subject
from shuken.localisable import tr
from shuken.store.tables import CollectionGrantRow, CollectionRow


def readable_condition(subject: Subject):
    """The WHERE condition on `collections` selecting exactly what the subject may read."""
    if not permits(subject, "knowledge:read"):
        return false()
    in_workspace = CollectionRow.workspace == subject.workspace
    if subject.is_admin:
        return and_(in_workspace, true())
    granted = select(CollectionGrantRow.collection_id).where(CollectionGrantRow.group_name.in_(sorted(subject.groups)))
    return and_(in_workspace, or_(CollectionRow.restricted.is_(False), CollectionRow.id.in_(granted)))


def decide_read(session: Session, subject: Subject, collection: CollectionRow) -> Decision:
    """(allowed, reason) for one collection, evaluated with the same SQL rule as every search; a refusal's
    reason is the whole message for the caller."""
    allowed = session.scalar(
        select(CollectionRow.id).where(CollectionRow.id == collection.id, readable_condition(subject))
    ) is not None
    if allowed:
        if subject.is_admin:
            return Decision(True, f"administrator of workspace '{subject.workspace}'")
        if not collection.restricted:
            return Decision(True, "the collection is open to its whole workspace")
        return Decision(True, "a member of a group the collection is shared with")
    name = collection.name
    if collection.workspace != subject.workspace:
        return Decision(False, tr("Not allowed to read '%(name)s': the collection belongs to another workspace.",
                                  name=name))
    if not permits(subject, "knowledge:read"):
        return Decision(False, tr("Not allowed to read '%(name)s': the role '%(role)s' (or this key's scopes) does "
                                  "not allow reading knowledge.", name=name, role=subject.role))
    groups = session.scalars(
        select(CollectionGrantRow.group_name).where(CollectionGrantRow.collection_id == collection.id)
    ).all()
    if not groups:
        return Decision(False, tr("Not allowed to read '%(name)s': the collection '%(name)s' is restricted to "
                                  "group(s) (none), and the caller is in none of them.", name=name))
    return Decision(False, tr("Not allowed to read '%(name)s': the collection '%(name)s' is restricted to group(s) "
                              "%(groups)s, and the caller is in none of them.",
                              name=name, groups=", ".join(sorted(groups))))


def find_collection(session: Session, subject: Subject, name: str) -> CollectionRow:
    """The named collection in the subject's workspace, if the subject may read it; else NotFound/Forbidden."""
    row = session.scalar(
        select(CollectionRow).where(CollectionRow.workspace == subject.workspace, CollectionRow.name == name)
    )
    if row is None:
        raise NotFound(tr("No collection named '%(name)s'. List collections with GET /v1/collections "
                          "or `shuken collections list`.", name=name), param="collection",
                       code="collection_not_found")
    decision = decide_read(session, subject, row)
    if not decision.allowed:
        raise Forbidden(decision.reason, param="collection", code="collection_forbidden")
    return row
