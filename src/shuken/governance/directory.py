"""Workspaces, users (argon2id passwords), memberships with roles, and groups.

Every change is emitted as an event inside the same transaction, so it reaches the audit chain with it. Changes
made for a `Subject` are checked here by `authz.require`; the others are the local operator's (a new workspace, a
password) or checked by the service that asks for them (`KeyService.create_workspace` makes its creator owner).
OIDC sign-in can later link `users.external_id` without changing anything else here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shuken.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from shuken.governance import events as ev
from shuken.governance.authz import Resource, require
from shuken.governance.events import EventBus
from shuken.governance.identity import ROLES, Subject
from shuken.governance.policy import WorkspacePolicy
from shuken.localisable import tr
from shuken.store import Database
from shuken.store.tables import GroupMemberRow, MembershipRow, UserRow, WebSessionRow, WorkspaceRow, utc_now

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
GROUP = re.compile(r"^[\w.-]{1,100}$")
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# A failed sign-in's reason (kept in the audit record as it is) → what the person signing in is told.
SIGN_IN_FAILED = {
    "account locked after repeated failures": tr("Sign-in failed: account locked after repeated failures."),
    "unknown user or wrong password": tr("Sign-in failed: unknown user or wrong password."),
    "not a member of this workspace": tr("Sign-in failed: not a member of this workspace."),
}


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    display_name: str
    role: str
    groups: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"user_id": self.user_id, "email": self.email, "display_name": self.display_name,
                "role": self.role, "groups": list(self.groups)}


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise InvalidRequest(tr("'%(email)s' is not an e-mail address.", email=email), param="email")
    return email


def policy_of(session: Session, workspace: str) -> WorkspacePolicy:
    row = session.get(WorkspaceRow, workspace)
    return WorkspacePolicy.load(row.policy if row else None)


class Directory:
    def __init__(self, db: Database, bus: EventBus):
        self.db = db
        self.bus = bus
        self.hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
        self._dummy_hash: str | None = None

    # -- workspaces -----------------------------------------------------------------------------------------
    def create_workspace(self, slug: str, display_name: str = "", actor: str = "operator") -> dict:
        if not SLUG.match(slug or ""):
            raise InvalidRequest(tr("A workspace id is 1–63 lower-case letters, digits, '-' or '_'."), param="slug")
        with self.db.session() as session:
            if session.get(WorkspaceRow, slug) is not None:
                raise InvalidRequest(tr("Workspace '%(slug)s' already exists.", slug=slug), param="slug",
                                     code="workspace_exists")
            row = WorkspaceRow(slug=slug, display_name=display_name or slug, policy={}, created_at=utc_now())
            session.add(row)
            session.flush()
            self.bus.emit(ev.WorkspaceCreated(workspace=slug, actor=actor, resource=f"workspace:{slug}"), session)
            return self._workspace_dict(session, row)

    def ensure_workspace(self, slug: str) -> None:
        with self.db.session() as session:
            exists = session.get(WorkspaceRow, slug) is not None
        if not exists:
            self.create_workspace(slug)

    def _workspace_dict(self, session: Session, row: WorkspaceRow) -> dict:
        members = session.scalar(select(func.count()).select_from(MembershipRow)
                                 .where(MembershipRow.workspace == row.slug))
        return {"id": row.slug, "object": "workspace", "display_name": row.display_name, "members": members,
                "policy": WorkspacePolicy.load(row.policy).model_dump(), "created_at": row.created_at.isoformat()}

    def list_workspaces(self) -> list[dict]:
        with self.db.session() as session:
            return [self._workspace_dict(session, row)
                    for row in session.scalars(select(WorkspaceRow).order_by(WorkspaceRow.slug))]

    def workspace(self, subject: Subject) -> dict:
        with self.db.session() as session:
            return self._workspace_dict(session, self._workspace_row(session, subject.workspace))

    @staticmethod
    def _workspace_row(session: Session, slug: str) -> WorkspaceRow:
        row = session.get(WorkspaceRow, slug)
        if row is None:
            raise NotFound(tr("No workspace '%(slug)s'. List them with `shuken workspaces list`.", slug=slug),
                           param="workspace", code="workspace_not_found")
        return row

    def policy(self, workspace: str) -> WorkspacePolicy:
        with self.db.session() as session:
            return policy_of(session, workspace)

    def update_policy(self, subject: Subject, changes: dict) -> WorkspacePolicy:
        require("workspace:settings", Resource("workspace", subject.workspace, subject.workspace), subject)
        with self.db.session() as session:
            row = self._workspace_row(session, subject.workspace)
            before = WorkspacePolicy.load(row.policy)
            try:
                after = before.updated(changes)
            except ValueError as exc:
                raise InvalidRequest(tr("Invalid workspace settings: %(error)s", error=str(exc)),
                                     param="settings") from None
            row.policy = after.model_dump()
            changed = {k: {"from": getattr(before, k), "to": getattr(after, k)}
                       for k in type(after).model_fields if getattr(before, k) != getattr(after, k)}
            self.bus.emit(ev.SettingsChanged(workspace=subject.workspace, actor=subject.actor,
                                             resource=f"workspace:{subject.workspace}",
                                             changed=changed), session)
            return after

    # -- users ----------------------------------------------------------------------------------------------
    def create_user(self, subject: Subject, email: str, role: str, groups: list[str] | tuple[str, ...] = (),
                    display_name: str = "", password: str | None = None) -> Member:
        """Create the user if new (users are global; memberships are per workspace), then set their role
        and groups in the subject's workspace."""
        require("users:manage", Resource("user", subject.workspace, email), subject)
        email = normalise_email(email)
        self._check_role(subject, role)
        with self.db.session() as session:
            self._workspace_row(session, subject.workspace)
            user = session.scalar(select(UserRow).where(UserRow.email == email))
            if user is None:
                user = UserRow(email=email, display_name=display_name or email.split("@")[0],
                               password_hash=self._hash_password(password) if password else None,
                               failed_logins=0, created_at=utc_now())
                session.add(user)
                session.flush()
                self.bus.emit(ev.UserCreated(workspace=subject.workspace, actor=subject.actor,
                                             resource=f"user:{user.id}", content={"email": email},
                                             content_user_id=user.id), session)
            elif session.get(MembershipRow, (subject.workspace, user.id)) is not None:
                raise InvalidRequest(tr("%(email)s is already a member of '%(workspace)s'; change their role with "
                                        "`shuken users set-role`.", email=email, workspace=subject.workspace),
                                     param="email", code="user_exists")
            self._set_membership(session, subject, user, role, groups)
            return self._member(session, subject.workspace, user)

    def set_role(self, subject: Subject, email: str, role: str, groups: list[str] | None = None) -> Member:
        require("users:manage", Resource("user", subject.workspace, email), subject)
        self._check_role(subject, role)
        with self.db.session() as session:
            user = self._member_user(session, subject.workspace, email)
            self._set_membership(session, subject, user, role, groups)
            return self._member(session, subject.workspace, user)

    def remove_member(self, subject: Subject, email: str) -> None:
        require("users:manage", Resource("user", subject.workspace, email), subject)
        with self.db.session() as session:
            user = self._member_user(session, subject.workspace, email)
            membership = session.get_one(MembershipRow, (subject.workspace, user.id))
            self._check_owner_change(subject, membership.role, session, subject.workspace)
            session.execute(delete(GroupMemberRow).where(GroupMemberRow.workspace == subject.workspace,
                                                         GroupMemberRow.user_id == user.id))
            # Signed out of this workspace at once: re-adding them later must not revive an old browser session.
            session.execute(delete(WebSessionRow).where(WebSessionRow.workspace == subject.workspace,
                                                        WebSessionRow.user_id == user.id))
            session.delete(membership)
            self.bus.emit(ev.RoleChanged(workspace=subject.workspace, actor=subject.actor,
                                         resource=f"user:{user.id}", before=membership.role, after=None),
                          session)

    @staticmethod
    def _check_owner_change(subject: Subject, current_role: str | None, session: Session, workspace: str,
                            new_role: str | None = None) -> None:
        """An admin may manage everyone but owners: only an owner can demote or remove an owner, and the last
        owner stays (a workspace nobody owns cannot be governed)."""
        if current_role != "owner" or new_role == "owner":
            return
        if subject.role != "owner":
            raise Forbidden(tr("Only an owner can change or remove an owner."), code="forbidden")
        owners = session.execute(select(func.count()).select_from(MembershipRow).where(
            MembershipRow.workspace == workspace, MembershipRow.role == "owner")).scalar_one()
        if owners <= 1:
            raise InvalidRequest(tr("This is the workspace's last owner; make someone else an owner first."),
                                 code="last_owner")

    @staticmethod
    def role_of(session: Session, workspace: str, user_id: int) -> str | None:
        membership = session.get(MembershipRow, (workspace, user_id))
        return membership.role if membership else None

    @staticmethod
    def _check_role(subject: Subject, role: str) -> None:
        if role not in ROLES:
            raise InvalidRequest(tr("Unknown role '%(role)s'; choose one of %(roles)s.", role=role,
                                    roles=", ".join(ROLES)), param="role")
        if role == "owner" and subject.role != "owner":
            raise Forbidden(tr("Only an owner can make someone an owner."), param="role", code="forbidden")

    def _set_membership(self, session: Session, subject: Subject, user: UserRow, role: str,
                        groups: list[str] | tuple[str, ...] | None) -> None:
        membership = session.get(MembershipRow, (subject.workspace, user.id))
        before = membership.role if membership else None
        self._check_owner_change(subject, before, session, subject.workspace, role)
        if membership is None:
            session.add(MembershipRow(workspace=subject.workspace, user_id=user.id, role=role, created_at=utc_now()))
        else:
            membership.role = role
        if before != role:
            self.bus.emit(ev.RoleChanged(workspace=subject.workspace, actor=subject.actor, resource=f"user:{user.id}",
                                         before=before, after=role), session)
        if groups is not None:
            self._set_groups(session, subject, user, groups)

    def _set_groups(self, session: Session, subject: Subject, user: UserRow, groups) -> None:
        wanted = sorted({g.strip() for g in groups if g.strip()})
        for group in wanted:
            if not GROUP.match(group):
                raise InvalidRequest(tr("Invalid group name '%(group)s'.", group=group), param="groups")
        current = sorted(session.scalars(select(GroupMemberRow.group_name).where(
            GroupMemberRow.workspace == subject.workspace, GroupMemberRow.user_id == user.id)))
        if current == wanted:
            return
        session.execute(delete(GroupMemberRow).where(GroupMemberRow.workspace == subject.workspace,
                                                     GroupMemberRow.user_id == user.id))
        session.add_all(GroupMemberRow(workspace=subject.workspace, group_name=g, user_id=user.id) for g in wanted)
        self.bus.emit(ev.GroupsChanged(workspace=subject.workspace, actor=subject.actor, resource=f"user:{user.id}",
                                       before=current, after=wanted), session)

    def set_groups(self, subject: Subject, email: str, groups: list[str]) -> Member:
        require("users:manage", Resource("user", subject.workspace, email), subject)
        with self.db.session() as session:
            user = self._member_user(session, subject.workspace, email)
            self._set_groups(session, subject, user, groups)
            return self._member(session, subject.workspace, user)

    def _member_user(self, session: Session, workspace: str, email: str) -> UserRow:
        user = session.scalar(select(UserRow).where(UserRow.email == normalise_email(email)))
        if user is None or session.get(MembershipRow, (workspace, user.id)) is None:
            raise NotFound(tr("No user %(email)s in workspace '%(workspace)s'. Add them with "
                              "`shuken users create`.", email=email, workspace=workspace),
                           param="email", code="user_not_found")
        return user

    def _member(self, session: Session, workspace: str, user: UserRow) -> Member:
        role = session.get_one(MembershipRow, (workspace, user.id)).role
        groups = tuple(sorted(session.scalars(select(GroupMemberRow.group_name).where(
            GroupMemberRow.workspace == workspace, GroupMemberRow.user_id == user.id))))
        return Member(user.id, user.email, user.display_name, role, groups)

    def email_of(self, user_id: int) -> str:
        with self.db.session() as session:
            return session.get_one(UserRow, user_id).email

    def add_existing_user(self, subject: Subject, email: str, role: str, actor: str) -> Member:
        """Give an existing account a role in the subject's workspace (used when its creator becomes owner)."""
        with self.db.session() as session:
            user = session.scalars(select(UserRow).where(UserRow.email == normalise_email(email))).one()
            session.add(MembershipRow(workspace=subject.workspace, user_id=user.id, role=role, created_at=utc_now()))
            self.bus.emit(ev.RoleChanged(workspace=subject.workspace, actor=actor, resource=f"user:{user.id}",
                                         before=None, after=role), session)
            return self._member(session, subject.workspace, user)

    def workspaces_of(self, subject: Subject) -> list[dict]:
        """The workspaces the caller's user belongs to (with their role); nothing about any other."""
        with self.db.session() as session:
            rows = session.execute(select(WorkspaceRow, MembershipRow.role)
                                   .join(MembershipRow, MembershipRow.workspace == WorkspaceRow.slug)
                                   .where(MembershipRow.user_id == subject.user_id)
                                   .order_by(WorkspaceRow.slug)).all()
            return [{"id": row.slug, "object": "workspace", "display_name": row.display_name, "role": role,
                     "created_at": row.created_at.isoformat()} for row, role in rows]

    def has_users(self) -> bool:
        with self.db.session() as session:
            return session.scalar(select(UserRow.id).limit(1)) is not None

    def members(self, subject: Subject) -> list[Member]:
        require("users:manage", Resource("user", subject.workspace), subject)
        with self.db.session() as session:
            users = session.scalars(select(UserRow).join(MembershipRow, MembershipRow.user_id == UserRow.id)
                                    .where(MembershipRow.workspace == subject.workspace).order_by(UserRow.email))
            return [self._member(session, subject.workspace, user) for user in users.all()]

    def member_for(self, subject: Subject, email: str) -> Member:
        """One member, for a caller who may manage users (others are not told who is a member)."""
        require("users:manage", Resource("user", subject.workspace), subject)
        return self.member(subject.workspace, email)

    def member(self, workspace: str, email: str) -> Member:
        with self.db.session() as session:
            return self._member(session, workspace, self._member_user(session, workspace, email))

    def subject_for(self, session: Session, workspace: str, user_id: int, key_id: int | None = None,
                    scopes: frozenset[str] | None = None) -> Subject:
        """The Subject of a user in a workspace, from their current role and groups."""
        membership = session.get(MembershipRow, (workspace, user_id))
        if membership is None:
            raise Unauthorized(tr("This user is no longer a member of the workspace."))
        groups = frozenset(session.scalars(select(GroupMemberRow.group_name).where(
            GroupMemberRow.workspace == workspace, GroupMemberRow.user_id == user_id)))
        return Subject(workspace=workspace, role=membership.role, user_id=user_id, key_id=key_id, groups=groups,
                       scopes=scopes)

    # -- passwords ------------------------------------------------------------------------------------------
    def _hash_password(self, password: str) -> str:
        if len(password) < 12:
            raise InvalidRequest(tr("A password needs at least 12 characters."), param="password")
        return self.hasher.hash(password)

    def set_password(self, email: str, password: str) -> None:
        """The local operator sets a user's sign-in password; audited in every workspace they belong to (without
        the password)."""
        with self.db.session() as session:
            user = session.scalar(select(UserRow).where(UserRow.email == normalise_email(email)))
            if user is None:
                raise NotFound(tr("No user %(email)s.", email=email), param="email", code="user_not_found")
            user.password_hash = self._hash_password(password)
            user.failed_logins, user.locked_until = 0, None
            # A new password signs the user out of every browser (the old one may be why it was changed).
            session.execute(delete(WebSessionRow).where(WebSessionRow.user_id == user.id))
            workspaces = session.scalars(select(MembershipRow.workspace).where(MembershipRow.user_id == user.id)
                                         .order_by(MembershipRow.workspace)).all()
            for workspace in workspaces or [ev.SYSTEM_WORKSPACE]:
                self.bus.emit(ev.PasswordChanged(workspace=workspace, actor="operator", resource=f"user:{user.id}"),
                              session)

    def _spend_a_verification(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("no account has this password")
        try:
            self.hasher.verify(self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            pass

    def check_password(self, workspace: str, email: str, password: str) -> Subject:
        """Sign-in: the user's Subject in the workspace, or Unauthorized. Every attempt in an existing workspace is
        audited (and committed, failures too); repeated failures lock the account for a while."""
        locked = "account locked after repeated failures"
        with self.db.session() as session:
            if session.get(WorkspaceRow, workspace) is None:
                self._spend_a_verification(password)
                raise Unauthorized(tr("Sign-in failed: unknown user or wrong password."), code="invalid_credentials")
            user = session.scalar(select(UserRow).where(UserRow.email == (email or "").strip().lower()))
            now = utc_now()
            ok, reason = False, "unknown user or wrong password"
            if user is None or not user.password_hash:
                self._spend_a_verification(password)  # as slow as a real check: timing tells nobody who exists
            if user is not None and user.locked_until and user.locked_until > now:
                reason = locked
            elif user is not None and user.password_hash and user.disabled_at is None:
                try:
                    ok = self.hasher.verify(user.password_hash, password)
                except (VerificationError, InvalidHashError):
                    ok = False
                if ok and session.get(MembershipRow, (workspace, user.id)) is None:
                    ok, reason = False, "not a member of this workspace"
                if ok and self.hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = self.hasher.hash(password)
            if user is not None and not ok and reason != locked:
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.locked_until, user.failed_logins = now + LOCKOUT, 0
            if ok and user is not None:  # only a user's password can be right
                user.failed_logins = 0
            resource = f"user:{user.id}" if user else "user:unknown"
            self.bus.emit(ev.LoginAttempted(workspace=workspace, actor=resource, resource=resource,
                                            outcome="success" if ok else "failure",
                                            reason=None if ok else reason), session)
            if ok and user is not None:
                return self.subject_for(session, workspace, user.id)
        raise Unauthorized(SIGN_IN_FAILED[reason],
                           code="account_locked" if reason == locked else "invalid_credentials")
