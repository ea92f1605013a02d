"""The sovereignty report behind `shuken doctor --sovereignty` and GET /v1/admin/sovereignty: checks gathered as
data (section, name, ok, warning, detail). It never prints and never opens a connection: egress is judged by
asking the installed guard for its decision."""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shuken import __version__
from shuken.registry.manifest import upstream_address
from shuken.governance import egress
from shuken.governance.authz import Resource, require
from shuken.governance.identity import Subject
from shuken.governance.policy import WorkspacePolicy
from shuken.localisable import Message, joined, tr
from shuken.registry.builtin import BUNDLED
from shuken.store.tables import AuditCheckpointRow, ConsentEventRow, MembershipRow, TrainingRecordRow

SECTIONS = ("models", "storage", "listening", "egress", "environment", "workspaces", "audit")
# Asked of the guard, never connected to: a documentation address (RFC 5737) and the public model hub.
PROBES = (("203.0.113.1", 443), ("huggingface.co", 443))


@dataclass(frozen=True)
class Check:
    """One check; `name` and `detail` are `tr` messages where they are words (the web UI shows them in the viewer's
    language), and their English is what the CLI, the JSON report and `failed` name."""

    section: str
    name: str
    ok: bool
    detail: str
    warning: bool = False  # passes, but the operator should look at it
    data: dict = field(default_factory=dict)

    @property
    def level(self) -> str:
        return "fail" if not self.ok else "warn" if self.warning else "pass"

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "level": self.level, "detail": self.detail, **self.data}


@dataclass(frozen=True)
class SovereigntyReport:
    checks: list[Check]
    sovereign: bool
    generated_at: str

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def as_dict(self) -> dict:
        return {"ok": self.ok, "failed": self.failed,
                "warnings": [check.name for check in self.checks if check.ok and check.warning],
                "version": __version__, "sovereign": self.sovereign, "generated_at": self.generated_at,
                "sections": {section: [c.as_dict() for c in self.checks if c.section == section]
                             for section in SECTIONS}}


def _size(path: Path) -> tuple[int, int]:
    """(bytes, files) under a file or directory; missing counts as empty."""
    if path.is_file():
        return path.stat().st_size, 1
    total = count = 0
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            for name in files:
                try:
                    total += (Path(root) / name).stat().st_size
                    count += 1
                except OSError:  # removed while we walked
                    pass
    return total, count


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


# -- models ---------------------------------------------------------------------------------------------------
def model_origin(manifest) -> str:
    """Where a model comes from: a remote model's server, otherwise the source recorded when it was added."""
    base_url = (manifest.options or {}).get("base_url")
    return base_url or manifest.source or "unknown"


def model_checks(registry, guard, verify: bool = True, show_progress: bool = False) -> list[Check]:
    manifests = registry.list()
    registered = {m.name for m in manifests}
    checks = [Check("models", tr("bundled model %(name)s", name=b.name), False,
                    tr("not registered: `shuken models list` registers it"))
              for b in BUNDLED if b.name not in registered]
    for manifest in manifests:
        ok, reason = registry.verify(manifest, show_progress) if verify else (True, tr("not re-hashed (verify off)"))
        origin, address = model_origin(manifest), upstream_address(manifest)
        notes = []
        warning = False
        if address is not None:
            host, _, port = address.rpartition(":")
            decision = guard.decide(host, int(port)) if guard else None
            notes.append(tr("the guard lets it through: %(reason)s", reason=decision.reason)
                         if decision and decision.allowed else
                         tr("the guard REFUSES it: %(reason)s", reason=decision.reason) if decision else
                         tr("remote; no guard installed"))
            warning = decision is not None and not decision.allowed
        if not manifest.license:
            notes.append(tr("licence unknown: record it when adding the model (--license)"))
            warning = True
        data = {"model": manifest.name, "sha256": manifest.sha256, "license": manifest.license, "origin": origin,
                "bundled": manifest.name in {b.name for b in BUNDLED}, "location": "remote" if address else "local",
                "path": manifest.path, "size_bytes": manifest.size_bytes,
                "verified": ok if verify and manifest.sha256 else None}  # None: nothing was hashed
        verified = ok and verify and manifest.sha256
        integrity = tr("sha256 %(sha256)s… verified", sha256=manifest.sha256[:12]) if verified else reason
        detail = joined([integrity, tr("licence %(license)s", license=manifest.license or "?"),
                         tr("origin %(origin)s", origin=origin), *notes])
        checks.append(Check("models", tr("model %(name)s", name=manifest.name), ok, detail, warning, data))
    if not manifests:
        checks.append(Check("models", tr("models registered"), True, tr("no model registered yet"), True))
    return checks


# -- storage --------------------------------------------------------------------------------------------------
def storage_locations(settings, audit) -> list[dict]:
    """Every place Shuken keeps data, with its size: shared by the doctor and the compliance report."""
    url = make_url(settings.database_url)
    database = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    db_bytes = sum(_size(Path(f"{database}{suffix}"))[0] for suffix in ("", "-wal", "-shm")) if database else None
    files_bytes, files_count = _size(settings.files_dir)
    models_bytes, models_count = _size(settings.models_dir)
    key, checkpoints = settings.signing_key_path, audit.checkpoint_file
    return [
        {"kind": tr("database"), "where": url.render_as_string(hide_password=True), "path": str(database or ""),
         "bytes": db_bytes, "holds": "workspaces, users, key hashes, audit records, documents and their index, "
                                     "conversations, consent events, captured training records"},
        {"kind": tr("uploaded files"), "where": str(settings.files_dir), "path": str(settings.files_dir),
         "bytes": files_bytes, "files": files_count, "holds": "original uploaded documents (content-addressed)"},
        {"kind": tr("models"), "where": str(settings.models_dir), "path": str(settings.models_dir),
         "bytes": models_bytes, "files": models_count,
         "holds": "assembled bundled models; files added with `shuken models add` stay where they are"},
        {"kind": tr("audit signing key"), "where": str(key), "path": str(key),
         "bytes": key.stat().st_size if key.is_file() else None, "holds": "Ed25519 key that signs checkpoints"},
        {"kind": tr("audit checkpoints"), "where": str(checkpoints), "path": str(checkpoints),
         "bytes": checkpoints.stat().st_size if checkpoints and checkpoints.is_file() else None,
         "holds": "signed heads of every audit chain (a second copy beside the key)"},
        {"kind": tr("logs"), "where": "stderr", "path": "", "bytes": None,
         "holds": "JSON lines; where they are kept is up to the process manager (journald, a file)"},
    ]


def _place(where: str, size: str | None, files: int | None) -> str:
    """Where a store is, with its size and file count when known."""
    if size is None:
        return where if files is None else tr("%(where)s in %(files)s file(s)", where=where, files=files)
    return (tr("%(where)s, %(size)s", where=where, size=size) if files is None else
            tr("%(where)s, %(size)s in %(files)s file(s)", where=where, size=size, files=files))


def storage_checks(settings, audit, registry_paths: list[str]) -> list[Check]:
    checks = []
    home = settings.home_dir
    mode = home.stat().st_mode
    others = bool(mode & 0o007)
    values = {"path": str(home), "mode": stat.filemode(mode)}
    checks.append(Check("storage", tr("home directory"), True,
                        tr("%(path)s (mode %(mode)s): other users of this machine can enter it; chmod 700", **values)
                        if others else tr("%(path)s (mode %(mode)s)", **values),
                        others, {"path": str(home), "mode": oct(mode & 0o777)}))
    for place in storage_locations(settings, audit):
        where, files = place["where"], place.get("files")
        size = None if place["bytes"] is None else human_bytes(place["bytes"])
        ok, warning, detail = True, False, _place(where, size, files)
        if place["kind"] == "audit signing key":
            key = Path(place["path"])
            if not key.is_file():
                warning, detail = True, tr("%(where)s: not created yet (no checkpoint signed)", where=where)
            elif key.stat().st_mode & 0o077:  # anyone else who can read it can forge checkpoints
                ok, detail = False, tr("%(where)s, %(size)s: readable by others (%(mode)s); chmod 600", where=where,
                                       size=size, mode=stat.filemode(key.stat().st_mode))
            elif key.is_relative_to(home):
                detail = tr("%(where)s, %(size)s: inside SHUKEN_HOME; keep a copy of the checkpoints file on another "
                            "machine", where=where, size=size)
        if place["kind"] == "audit checkpoints" and place["bytes"] is None:
            detail = tr("%(where)s: not created yet", where=where)
        if place["kind"] == "logs" and settings.log_prompts:
            warning, detail = True, tr("%(where)s: SHUKEN_LOG_PROMPTS is on, so prompt and answer text goes to the "
                                       "logs", where=where)
        elif place["kind"] == "logs":
            detail = tr("%(where)s: no prompt or answer text (SHUKEN_LOG_PROMPTS off)", where=where)
        if place["kind"] == "models":
            outside = [p for p in registry_paths if not Path(p).is_relative_to(settings.models_dir)]
            if outside:
                detail = tr("%(where)s, %(size)s in %(files)s file(s); %(elsewhere)s registered model file(s) live "
                            "elsewhere (registered in place)", where=where, size=size, files=files,
                            elsewhere=len(outside))
            place = {**place, "elsewhere": outside}
        checks.append(Check("storage", place["kind"], ok, detail, warning,
                            {k: v for k, v in place.items() if k not in ("kind",)}))
    return checks


# -- listening address ----------------------------------------------------------------------------------------
def listen_check(host: str, port: int, explicit: bool, sovereign: bool) -> Check:
    """Loopback passes; an internal interface set on purpose passes; every interface (0.0.0.0, ::) or a host name
    is a warning; a public address fails in sovereign mode (a warning otherwise), as does, in sovereign mode, any
    non-loopback address nobody set on purpose."""
    where = f"{host}:{port}"
    data = {"host": host, "port": port, "explicit": explicit}
    name = tr("listening address")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if (address is not None and address.is_loopback) or host.lower() == "localhost":
        return Check("listening", name, True, tr("%(where)s: loopback, only this machine can connect", where=where),
                     data=data)
    if sovereign and not explicit:
        return Check("listening", name, False, tr("%(where)s: not loopback, and not set explicitly (SHUKEN_HOST or "
                                                  "shuken.toml); set it on purpose or use 127.0.0.1", where=where),
                     data=data)
    if address is None:
        return Check("listening", name, True, tr("%(where)s: a host name; not resolved here (that would be a DNS "
                                                 "query): make sure it names an internal interface", where=where),
                     True, data)
    if address.is_unspecified:
        return Check("listening", name, True, tr("%(where)s: every interface of this machine, including any public "
                                                 "one; bind an internal address, or keep a firewall in front",
                                                 where=where), True, data)
    if address.is_global:
        return Check("listening", name, not sovereign, tr("%(where)s: a public address, so the API is reachable from "
                                                          "the internet; bind an internal address behind a reverse "
                                                          "proxy", where=where), True, data)
    return Check("listening", name, True, tr("%(where)s: a non-public interface, set explicitly; reachable from that "
                                             "network (use TLS in front)", where=where), data=data)


# -- egress ---------------------------------------------------------------------------------------------------
def egress_checks(settings, guard: egress.EgressGuard | None) -> list[Check]:
    installed = guard is not None and guard.installed
    checks = [
        Check("egress", tr("sovereign mode"), settings.sovereign,
              tr("on: offline switches set and the egress guard installed") if settings.sovereign
              else tr("off (SHUKEN_SOVEREIGN=false): nothing stops outbound connections")),
        Check("egress", tr("egress guard installed"), installed,
              tr("installed in this process (pid %(pid)s); %(refusals)s refusal(s) so far", pid=os.getpid(),
                 refusals=guard.refusals) if guard is not None and installed
              else tr("no guard in this process: outbound connections are not checked"), data={"installed": installed}),
    ]
    allows = guard.policy.describe() if guard else []
    entries = guard.policy.allow_list() if guard else []
    everything = [e for e, n in entries if n is not None and n.prefixlen == 0]
    public = [e for e, n in entries if n is not None and n.prefixlen and n.network_address.is_global]
    listed = joined(allows)
    if not allows:
        detail = tr("no guard: everything is allowed")
    elif everything:
        detail = tr("allows %(allows)s. %(everything)s allows every address: the guard protects nothing",
                    allows=listed, everything=", ".join(everything))
    elif public:
        detail = tr("allows %(allows)s. Public address(es) allowed: %(public)s; confirm they are yours",
                    allows=listed, public=", ".join(public))
    else:
        detail = tr("allows %(allows)s", allows=listed)
    checks.append(Check("egress", tr("egress allow-list"), installed and not everything, detail, bool(public),
                        {"allows": allows}))
    for host, port in PROBES:
        decision = guard.decide(host, port) if guard else None
        refused = decision is not None and not decision.allowed
        data = {"host": host, "port": port, "allowed": None if decision is None else decision.allowed,
                "reason": decision.reason if decision else "no guard installed"}
        if decision is None:
            detail = tr("no guard would refuse it (decided in-process; no connection opened)")
        elif refused:
            detail = tr("the guard refuses it: %(reason)s (decided in-process; no connection opened)",
                        reason=decision.reason)
        else:
            detail = tr("the guard would ALLOW it: %(reason)s (decided in-process; no connection opened)",
                        reason=decision.reason)
        checks.append(Check("egress", tr("refuses %(host)s:%(port)s", host=host, port=port), refused, detail,
                            data=data))
    return checks


def environment_checks(environ: Mapping[str, str], before: Mapping[str, str] | None = None) -> list[Check]:
    checks = []
    for name, wanted in egress.OFFLINE_ENVIRONMENT.items():
        actual = environ.get(name)
        ok = actual is not None and actual.lower() == wanted.lower()
        detail: str
        if not ok:
            detail = (tr("%(name)s is not set; sovereign mode sets %(wanted)s", name=name, wanted=wanted)
                      if actual is None else
                      tr("%(name)s is '%(actual)s'; sovereign mode sets %(wanted)s", name=name, actual=actual,
                         wanted=wanted))
        elif before is None or before.get(name, "").lower() == wanted.lower():
            detail = f"{name}={actual}"  # no words to translate
        elif before.get(name) is None:
            detail = tr("%(name)s=%(actual)s (set by Shuken at start)", name=name, actual=actual)
        else:
            detail = tr("%(name)s=%(actual)s (was '%(previous)s'; forced by sovereign mode)", name=name,
                        actual=actual, previous=before.get(name))
        # The check's name is the variable's own name: not words to translate.
        checks.append(Check("environment", name, ok, detail, data={"value": actual, "expected": wanted}))
    return checks


# -- workspaces and audit -------------------------------------------------------------------------------------
def retention_days(policy: WorkspacePolicy) -> dict[str, int | None]:
    """Each kind's retention limit in days (None: kept until deleted), as the reports name the kinds."""
    return {"training" if kind == "training_records" else kind: days
            for kind, days in policy.retention_limits().items()}


def _days(value: int | None) -> str:
    return tr("kept until deleted") if value is None else tr("%(days)s day(s)", days=value)


def consent_counts(session, workspace: str) -> dict:
    """Current members whose latest consent event is a grant, and captured training records, in one workspace.
    (Consent events outlive a membership or an erasure as evidence; a former member consents to nothing.)"""
    latest = (select(func.max(ConsentEventRow.id)).where(ConsentEventRow.workspace == workspace)
              .group_by(ConsentEventRow.user_id))
    granted = session.scalar(select(func.count()).select_from(ConsentEventRow).join(
        MembershipRow, (MembershipRow.workspace == ConsentEventRow.workspace)
        & (MembershipRow.user_id == ConsentEventRow.user_id)).where(
        ConsentEventRow.id.in_(latest), ConsentEventRow.granted.is_(True)))
    captured = session.scalar(select(func.count()).select_from(TrainingRecordRow)
                              .where(TrainingRecordRow.workspace == workspace))
    return {"users_consenting": granted, "captured_records": captured}


def workspace_checks(db, workspaces: list[dict]) -> list[Check]:
    checks = []
    for ws in workspaces:
        slug, policy = ws["id"], ws["policy"]
        retention = retention_days(WorkspacePolicy.load(policy))
        forever = policy["audit_content"] and retention["audit_content"] is None
        detail: Message = joined([
            tr("conversations: %(days)s", days=_days(retention["conversations"])),
            tr("audit content: %(days)s", days=_days(retention["audit_content"]))
            if policy["audit_content"] else tr("audit content: none kept (audit_content off)"),
            tr("files: %(days)s", days=_days(retention["files"])),
            tr("training: %(days)s", days=_days(retention["training"]))])
        if forever:
            detail = tr("%(retention)s: prompts and answers kept with audit records accumulate with no limit",
                        retention=detail)
        checks.append(Check("workspaces", tr("retention %(workspace)s", workspace=slug), True, detail, forever,
                            {"workspace": slug, "retention_days": retention, "audit_content": policy["audit_content"]}))
        with db.session() as session:
            counts = consent_counts(session, slug)
        mode = policy["training_capture"]
        unredacted = mode == "opt-in" and policy["pii_before_logging"] == "off"
        detail = (tr("training capture off: no conversation is kept as training data") if mode == "off" else
                  tr("training capture opt-in: %(users)s user(s) consenting, %(records)s record(s) captured; PII "
                     "before logging: %(pii)s", users=counts["users_consenting"], records=counts["captured_records"],
                     pii=policy["pii_before_logging"]))
        checks.append(Check("workspaces", tr("consent %(workspace)s", workspace=slug), True, detail, unredacted,
                            {"workspace": slug, "training_capture": mode, **counts}))
    return checks


def latest_checkpoint(db, workspace: str) -> dict | None:
    with db.session() as session:
        row = session.scalars(select(AuditCheckpointRow).where(AuditCheckpointRow.workspace == workspace)
                              .order_by(AuditCheckpointRow.seq.desc(), AuditCheckpointRow.id.desc()).limit(1)).first()
        return {"seq": row.seq, "signed_at": row.signed_at, "record_hash": row.record_hash} if row else None


def audit_checks(audit, db, chains: list[str]) -> list[Check]:
    checks, signed = [], 0
    for chain in chains:
        report = audit.verify(chain)
        latest = latest_checkpoint(db, chain)
        signed += report.checkpoints
        if not report.ok:  # the chain's own account (a `tr` message) names the first record that fails
            detail = tr("BROKEN: %(problem)s", problem=report.problem)
        elif latest:
            detail = tr("%(records)s record(s), chain intact; %(checkpoints)s signed checkpoint(s), latest at record "
                        "%(seq)s (%(signed_at)s)", records=report.records, checkpoints=report.checkpoints,
                        seq=latest["seq"], signed_at=latest["signed_at"])
        else:
            detail = tr("%(records)s record(s), chain intact; %(checkpoints)s signed checkpoint(s)",
                        records=report.records, checkpoints=report.checkpoints)
        checks.append(Check("audit", tr("audit chain %(workspace)s", workspace=chain), report.ok, detail,
                            data={**report.as_dict(), "latest_checkpoint": latest}))
    public_key = audit.public_key_hex() if signed else None
    if not signed:
        detail = tr("none yet: removing the newest records would go unnoticed until one is signed (`shuken audit "
                    "checkpoint`; the server signs every SHUKEN_AUDIT_CHECKPOINT_MINUTES)")
    elif public_key:
        detail = tr("%(count)s checkpoint(s) signed; public key %(key)s", count=signed, key=public_key[:16])
    else:
        detail = tr("%(count)s checkpoint(s) signed; public key none", count=signed)
    checks.append(Check("audit", tr("signed checkpoints"), True, detail, not signed, {"checkpoints": signed}))
    return checks


# -- the report -----------------------------------------------------------------------------------------------
def gather(svc, *, workspace: str | None = None, listen: tuple[str, int] | None = None,
           explicit_host: bool | None = None, verify_models: bool = True, show_progress: bool = False,
           environ: Mapping[str, str] | None = None, environ_before: Mapping[str, str] | None = None
           ) -> SovereigntyReport:
    """Every check, for the whole installation or (workspace given) with only that workspace's settings and chain.
    `listen` and `explicit_host` describe the server when it was started with other settings than svc's."""
    settings = svc.settings
    guard = egress.current_guard()
    host, port = listen or (settings.host, settings.port)
    explicit = "host" in settings.model_fields_set if explicit_host is None else explicit_host
    workspaces = [ws for ws in svc.directory.list_workspaces() if workspace is None or ws["id"] == workspace]
    chains = [workspace] if workspace else sorted(set(svc.audit.chains()) | {ws["id"] for ws in workspaces})
    manifests_paths = [m.path for m in svc.registry.list() if m.path]
    checks = [
        *model_checks(svc.registry, guard, verify_models, show_progress),
        *storage_checks(settings, svc.audit, manifests_paths),
        listen_check(host, port, explicit, settings.sovereign),
        *egress_checks(settings, guard),
        *environment_checks(os.environ if environ is None else environ, environ_before),
        *workspace_checks(svc.db, workspaces),
        *audit_checks(svc.audit, svc.db, chains),
    ]
    return SovereigntyReport(checks, settings.sovereign, datetime.now(timezone.utc).isoformat())


def gather_for(svc, subject: Subject, **options) -> SovereigntyReport:
    """The report for a workspace administrator: installation-wide facts, but only their own workspace's data."""
    require("workspace:settings", Resource("workspace", subject.workspace, subject.workspace), subject)
    return gather(svc, workspace=subject.workspace, **options)
