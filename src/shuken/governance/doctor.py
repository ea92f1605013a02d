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
from typing import Mapping

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shuken import __version__
from shuken.gateway.host import upstream_address
from shuken.governance import egress
from shuken.governance.authz import Resource, require
from shuken.governance.identity import Subject
from shuken.registry.builtin import BUNDLED
from shuken.store.tables import AuditCheckpointRow, ConsentEventRow, MembershipRow, TrainingRecordRow

SECTIONS = ("models", "storage", "listening", "egress", "environment", "workspaces", "audit")
# Asked of the guard, never connected to: a documentation address (RFC 5737) and the public model hub.
PROBES = (("203.0.113.1", 443), ("huggingface.co", 443))


@dataclass(frozen=True)
class Check:
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


def human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


# -- models ---------------------------------------------------------------------------------------------------
def model_origin(manifest) -> str:
    """Where a model comes from: a remote model's server, otherwise the source recorded when it was added."""
    base_url = (manifest.options or {}).get("base_url")
    return base_url or manifest.source or "unknown"


def model_checks(registry, guard, verify: bool = True, show_progress: bool = False) -> list[Check]:
    manifests = registry.list()
    registered = {m.name for m in manifests}
    checks = [Check("models", f"bundled model {b.name}", False, "not registered: `shuken models list` registers it")
              for b in BUNDLED if b.name not in registered]
    for manifest in manifests:
        ok, reason = registry.verify(manifest, show_progress) if verify else (True, "not re-hashed (verify off)")
        origin, address = model_origin(manifest), upstream_address(manifest)
        warning, notes = False, []
        if address is not None:
            host, _, port = address.rpartition(":")
            decision = guard.decide(host, int(port)) if guard else None
            notes.append(f"the guard lets it through: {decision.reason}" if decision and decision.allowed else
                         f"the guard REFUSES it: {decision.reason}" if decision else "remote; no guard installed")
            warning = decision is not None and not decision.allowed
        if not manifest.license:
            notes.append("licence unknown: record it when adding the model (--license)")
            warning = True
        data = {"model": manifest.name, "sha256": manifest.sha256, "license": manifest.license, "origin": origin,
                "bundled": manifest.name in {b.name for b in BUNDLED}, "location": "remote" if address else "local",
                "path": manifest.path, "size_bytes": manifest.size_bytes,
                "verified": ok if verify and manifest.sha256 else None}  # None: nothing was hashed
        integrity = f"sha256 {manifest.sha256[:12]}… verified" if ok and verify and manifest.sha256 else reason
        detail = "; ".join([integrity, f"licence {manifest.license or '?'}", f"origin {origin}", *notes])
        checks.append(Check("models", f"model {manifest.name}", ok, detail, warning, data))
    if not manifests:
        checks.append(Check("models", "models registered", True, "no model registered yet", True))
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
        {"kind": "database", "where": url.render_as_string(hide_password=True), "path": str(database or ""),
         "bytes": db_bytes, "holds": "workspaces, users, key hashes, audit records, documents and their index, "
                                     "conversations, consent events, captured training records"},
        {"kind": "uploaded files", "where": str(settings.files_dir), "path": str(settings.files_dir),
         "bytes": files_bytes, "files": files_count, "holds": "original uploaded documents (content-addressed)"},
        {"kind": "models", "where": str(settings.models_dir), "path": str(settings.models_dir),
         "bytes": models_bytes, "files": models_count,
         "holds": "assembled bundled models; files added with `shuken models add` stay where they are"},
        {"kind": "audit signing key", "where": str(key), "path": str(key),
         "bytes": key.stat().st_size if key.is_file() else None, "holds": "Ed25519 key that signs checkpoints"},
        {"kind": "audit checkpoints", "where": str(checkpoints), "path": str(checkpoints),
         "bytes": checkpoints.stat().st_size if checkpoints and checkpoints.is_file() else None,
         "holds": "signed heads of every audit chain (a second copy beside the key)"},
        {"kind": "logs", "where": "stderr", "path": "", "bytes": None,
         "holds": "JSON lines; where they are kept is up to the process manager (journald, a file)"},
    ]


def storage_checks(settings, audit, registry_paths: list[str]) -> list[Check]:
    checks = []
    home = settings.home_dir
    mode = home.stat().st_mode
    others = bool(mode & 0o007)
    checks.append(Check("storage", "home directory", True,
                        f"{home} (mode {stat.filemode(mode)})" + (": other users of this machine can enter it; "
                                                                  "chmod 700" if others else ""),
                        others, {"path": str(home), "mode": oct(mode & 0o777)}))
    for place in storage_locations(settings, audit):
        size = "" if place["bytes"] is None else f", {human_bytes(place['bytes'])}"
        files = f" in {place['files']} file(s)" if place.get("files") is not None else ""
        ok, warning, note = True, False, ""
        if place["kind"] == "audit signing key":
            key = Path(place["path"])
            if not key.is_file():
                warning, note = True, ": not created yet (no checkpoint signed)"
            elif key.stat().st_mode & 0o077:  # anyone else who can read it can forge checkpoints
                ok, note = False, f": readable by others ({stat.filemode(key.stat().st_mode)}); chmod 600"
            elif key.is_relative_to(home):
                note = ": inside SHUKEN_HOME; keep a copy of the checkpoints file on another machine"
        if place["kind"] == "audit checkpoints" and place["bytes"] is None:
            note = ": not created yet"
        if place["kind"] == "logs" and settings.log_prompts:
            warning, note = True, ": SHUKEN_LOG_PROMPTS is on, so prompt and answer text goes to the logs"
        elif place["kind"] == "logs":
            note = ": no prompt or answer text (SHUKEN_LOG_PROMPTS off)"
        if place["kind"] == "models":
            outside = [p for p in registry_paths if not Path(p).is_relative_to(settings.models_dir)]
            note = f"; {len(outside)} registered model file(s) live elsewhere (registered in place)" if outside else ""
            place = {**place, "elsewhere": outside}
        checks.append(Check("storage", place["kind"], ok, f"{place['where']}{size}{files}{note}", warning,
                            {k: v for k, v in place.items() if k not in ("kind",)}))
    return checks


# -- listening address ----------------------------------------------------------------------------------------
def listen_check(host: str, port: int, explicit: bool, sovereign: bool) -> Check:
    """Loopback passes; an internal interface set on purpose passes; every interface (0.0.0.0, ::) or a host name
    is a warning; a public address fails in sovereign mode (a warning otherwise), as does, in sovereign mode, any
    non-loopback address nobody set on purpose."""
    where = f"{host}:{port}"
    data = {"host": host, "port": port, "explicit": explicit}
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if (address is not None and address.is_loopback) or host.lower() == "localhost":
        return Check("listening", "listening address", True, f"{where}: loopback, only this machine can connect",
                     data=data)
    if sovereign and not explicit:
        return Check("listening", "listening address", False, f"{where}: not loopback, and not set explicitly "
                     "(SHUKEN_HOST or shuken.toml); set it on purpose or use 127.0.0.1", data=data)
    if address is None:
        return Check("listening", "listening address", True, f"{where}: a host name; not resolved here (that would be "
                     "a DNS query): make sure it names an internal interface", True, data)
    if address.is_unspecified:
        return Check("listening", "listening address", True, f"{where}: every interface of this machine, including "
                     "any public one; bind an internal address, or keep a firewall in front", True, data)
    if address.is_global:
        return Check("listening", "listening address", not sovereign, f"{where}: a public address, so the API is "
                     "reachable from the internet; bind an internal address behind a reverse proxy", True, data)
    return Check("listening", "listening address", True, f"{where}: a non-public interface, set explicitly; "
                 "reachable from that network (use TLS in front)", data=data)


# -- egress ---------------------------------------------------------------------------------------------------
def _entry_network(text: str):
    host = text.split(" (")[0]
    host = host[1:].partition("]")[0] if host.startswith("[") else host.split(":")[0] if host.count(":") == 1 else host
    try:
        return ipaddress.ip_network(host, strict=False)
    except ValueError:
        return None  # a host name


def egress_checks(settings, guard: egress.EgressGuard | None) -> list[Check]:
    installed = guard is not None and guard.installed
    checks = [
        Check("egress", "sovereign mode", settings.sovereign, "on: offline switches set and the egress guard installed"
              if settings.sovereign else "off (SHUKEN_SOVEREIGN=false): nothing stops outbound connections"),
        Check("egress", "egress guard installed", installed,
              f"installed in this process (pid {os.getpid()}); {guard.refusals} refusal(s) so far" if installed
              else "no guard in this process: outbound connections are not checked", data={"installed": installed}),
    ]
    allows = guard.policy.describe() if guard else []
    entries = allows[2:]  # the first two are loopback and unix sockets, always allowed
    networks = [(e, _entry_network(e)) for e in entries]
    everything = [e for e, n in networks if n is not None and n.prefixlen == 0]
    public = [e for e, n in networks if n is not None and n.prefixlen and n.network_address.is_global]
    detail = "allows " + "; ".join(allows) if allows else "no guard: everything is allowed"
    if everything:
        detail += f". {', '.join(everything)} allows every address: the guard protects nothing"
    elif public:
        detail += f". Public address(es) allowed: {', '.join(public)}; confirm they are yours"
    checks.append(Check("egress", "egress allow-list", installed and not everything, detail, bool(public),
                        {"allows": allows}))
    for host, port in PROBES:
        decision = guard.decide(host, port) if guard else None
        refused = decision is not None and not decision.allowed
        data = {"host": host, "port": port, "allowed": None if decision is None else decision.allowed,
                "reason": decision.reason if decision else "no guard installed"}
        detail = (f"the guard refuses it: {decision.reason}" if refused else
                  f"the guard would ALLOW it: {decision.reason}" if decision else "no guard would refuse it")
        checks.append(Check("egress", f"refuses {host}:{port}", refused, detail + " (decided in-process; "
                            "no connection opened)", data=data))
    return checks


def environment_checks(environ: Mapping[str, str], before: Mapping[str, str] | None = None) -> list[Check]:
    checks = []
    for name, wanted in egress.OFFLINE_ENVIRONMENT.items():
        actual = environ.get(name)
        ok = actual is not None and actual.lower() == wanted.lower()
        if not ok:
            detail = f"{name} is {'not set' if actual is None else repr(actual)}; sovereign mode sets {wanted}"
        elif before is None or before.get(name, "").lower() == wanted.lower():
            detail = f"{name}={actual}"
        else:
            previous = before.get(name)
            detail = f"{name}={actual} (" + ("set by Shuken at start" if previous is None
                                             else f"was {previous!r}; forced by sovereign mode") + ")"
        checks.append(Check("environment", name, ok, detail, data={"value": actual, "expected": wanted}))
    return checks


# -- workspaces and audit -------------------------------------------------------------------------------------
def _days(value: int | None) -> str:
    return "kept until deleted" if value is None else f"{value} day(s)"


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
        retention = {kind: policy[f"retention_{kind}_days"] for kind in ("conversations", "audit_content", "files",
                                                                         "training")}
        forever = policy["audit_content"] and retention["audit_content"] is None
        detail = "; ".join(f"{kind.replace('_', ' ')}: " + ("none kept (audit_content off)"
                                                             if kind == "audit_content" and not policy["audit_content"]
                                                             else _days(days)) for kind, days in retention.items())
        if forever:
            detail += ": prompts and answers kept with audit records accumulate with no limit"
        checks.append(Check("workspaces", f"retention {slug}", True, detail, forever,
                            {"workspace": slug, "retention_days": retention, "audit_content": policy["audit_content"]}))
        with db.session() as session:
            counts = consent_counts(session, slug)
        mode = policy["training_capture"]
        unredacted = mode == "opt-in" and policy["pii_before_logging"] == "off"
        detail = ("training capture off: no conversation is kept as training data" if mode == "off" else
                  f"training capture opt-in: {counts['users_consenting']} user(s) consenting, "
                  f"{counts['captured_records']} record(s) captured; "
                  f"PII before logging: {policy['pii_before_logging']}")
        checks.append(Check("workspaces", f"consent {slug}", True, detail, unredacted,
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
        if report.ok:
            detail = f"{report.records} record(s), chain intact; {report.checkpoints} signed checkpoint(s)" + (
                f", latest at record {latest['seq']} ({latest['signed_at']})" if latest else "")
        else:
            detail = f"BROKEN: {report.problem}"
        checks.append(Check("audit", f"audit chain {chain}", report.ok, detail,
                            data={**report.as_dict(), "latest_checkpoint": latest}))
    checks.append(Check("audit", "signed checkpoints", True,
                        f"{signed} checkpoint(s) signed; public key {(audit.public_key_hex() or 'none')[:16]}" if signed
                        else "none yet: removing the newest records would go unnoticed until one is signed "
                             "(`shuken audit checkpoint`; the server signs every SHUKEN_AUDIT_CHECKPOINT_MINUTES)",
                        not signed, {"checkpoints": signed}))
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
