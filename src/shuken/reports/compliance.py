"""The compliance report of one workspace (`shuken compliance report`, GET /v1/admin/compliance-report): facts
gathered from the registry, policy, audit chain and guard, plus checklists that say how Shuken supports each
principle and what the operator must still do. It makes no legal claim; generating it is itself audited."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import func, select

from shuken import __version__
from shuken.registry.manifest import upstream_address
from shuken.governance import egress
from shuken.governance import events as ev
from shuken.governance.audit import CHAINED_FIELDS
from shuken.governance.authz import ROLE_ACTIONS, Resource, require
from shuken.reports.doctor import (
    PROBES, consent_counts, human_bytes, latest_checkpoint, listen_check, model_origin, retention_days,
    storage_locations,
)
from shuken.governance.events import SYSTEM_WORKSPACE
from shuken.governance.identity import ROLES, Subject
from shuken.governance.pii.entities import ENTITY_TYPES
from shuken.governance.policy import WorkspacePolicy
from shuken.store.tables import (
    AuditContentRow, AuditEventRow, CollectionRow, ConsentEventRow, ConversationRow, DocumentRow, MembershipRow,
)

RECORD_FIELDS = {  # what each audit record holds, in plain words (the chained fields of governance.audit)
    "workspace": "the workspace the action happened in", "seq": "its position in the workspace's chain",
    "occurred_at": "when (UTC)", "actor": "who: a pseudonymous user and key number, never an e-mail",
    "action": "what was done (e.g. request.served, key.created, subject.erased)",
    "resource": "what it was done to (a model, key, user, collection)", "outcome": "success, failure, refused",
    "model": "the model that answered, for requests", "prompt_tokens": "tokens in the prompt, for requests",
    "completion_tokens": "tokens generated, for requests",
    "details": "ids, counts and short facts such as changed settings; never prompts, answers or e-mail addresses",
    "content_ref": "a salted hash pointing at stored content, if the policy keeps content; erasable",
    "prev_hash": "the previous record's hash, which chains the records together",
}
PII_STAGES = {"pii_before_logging": "content kept in audit records and training data",
              "pii_before_model": "prompts, before the model sees them", "pii_in_answers": "generated answers"}
PII_ACTIONS = {"off": "nothing is done", "flag": "found types are counted in the audit record; text unchanged",
               "redact": "found values are replaced by their type, e.g. [EMAIL_ADDRESS]"}
OVERSIGHT_ROLES = ("owner", "admin", "auditor")


def _counts(session, column, *where) -> dict:
    return dict(session.execute(select(column, func.count()).where(*where).group_by(column)).all())


def _item(topic: str, supports: str, operator: str, status: str) -> dict:
    return {"topic": topic, "shuken": supports, "operator": operator, "status": status}


def checklists(f: dict) -> dict:
    """Japan's AI Guidelines for Business (METI/MIC, 2024) and APPI, mapped to what Shuken provides. Statuses:
    met (the technical measure is in place), partly (in place, but the operator must add to it), operator (an
    organisational matter), attention (a measure Shuken provides is switched off or failing)."""
    secure = "partly" if f["guard"] and f["chain_ok"] else "attention"
    accountable = ("attention" if not f["chain_ok"] else "met" if f["checkpoints"] else "partly")
    private = "met" if f["pii_logging"] == "redact" and f["retention_set"] and not f["content_forever"] else "partly"
    egress_status = "attention" if not f["guard"] else "partly" if f["allow_list"] else "met"
    retention = "met" if f["retention_set"] else "partly"
    guidelines = [
        _item("Human-centric", f"Each workspace records how people oversee answers (\"{f['oversight']}\") and tells "
              "users they are dealing with an AI.", "Design the work so that a person decides where an answer "
              "affects people; do not use outputs to manipulate decisions.", "partly"),
        _item("Safety", "A model is loaded only if its SHA-256 matches the registry; model chat templates run in a "
              "sandbox; grounded answers cite their sources and decline when nothing relevant is found.",
              "Evaluate each model for your use; monitor answers; keep a way to stop or replace a model.",
              "partly" if f["models_ok"] else "attention"),
        _item("Fairness", "Model cards (architecture, origin, licence) support your assessment of each model.",
              "Assess models and documents for bias that matters to your users; review answers regularly.",
              "operator"),
        _item("Privacy protection", f"PII before logging: {f['pii_logging']}; training capture: {f['capture']} "
              "(only with each user's recorded consent); retention limits; erasure of a person's data.",
              "Decide and publish purposes; answer people's requests; choose retention periods.", private),
        _item("Ensuring security", "Outbound connections refused by the egress guard; API keys stored as hashes; "
              "argon2 passwords; roles, scopes and quotas; tamper-evident audit.", "Harden and patch the server, "
              "encrypt disks, put TLS in front, control who can log in to the machine, keep backups.", secure),
        _item("Transparency", "The workspace's AI notice; model cards; this report; audit exports.",
              "Show the notice in every application that uses Shuken; publish how AI is used.", "partly"),
        _item("Accountability", "Every action is a hash-chained audit record; signed checkpoints detect removal of "
              "the newest records; exports for review.", "Name who is responsible; review the audit log; keep "
              "checkpoint copies on another machine.", accountable),
        _item("Education and literacy", "This report and the notice text explain the system in plain language.",
              "Train staff on what the AI can and cannot do, and on these settings.", "operator"),
        _item("Ensuring fair competition", "Open formats (GGUF models, an OpenAI-compatible API, JSONL/CSV "
              "exports) avoid lock-in.", "Respect model licences and competition rules in your use.", "operator"),
        _item("Innovation", "Engines, parsers and languages are plugins; on-prem model servers can be added.",
              "Decide where AI helps your work, and share what you learn.", "operator"),
    ]
    appi = [
        _item("Purpose specification and notice (Arts. 17, 21)", "Whether conversations may become training data "
              f"is an explicit setting (now: {f['capture']}; off by default).", "Specify the purposes of use and "
              "publish or notify them to the people concerned.", "operator"),
        _item("Proper acquisition (Art. 20)", "A conversation becomes training data only while its user's consent "
              "is recorded, and each captured record points at that consent.", "Make sure uploaded documents were "
              "obtained properly; obtain consent for special care-required information.", "partly"),
        _item("Accuracy, and deletion when no longer needed (Art. 22)", "Retention periods per kind of data, "
              "enforced by an audited sweep.", "Choose the periods and check the sweep runs.", retention),
        _item("Security control measures (Art. 23)", "Egress guard, hashed keys, roles and scopes, tamper-evident "
              "audit, PII redaction.", "Organisational, human, physical and technical measures around the "
              "server (access control, encryption, backups, incident handling).", secure),
        _item("Supervision of employees and trustees (Arts. 24, 25)", "Per-person roles and keys; every action is "
              "recorded with its actor.", "Supervise staff; contract with and supervise any trustee (hosting, "
              "maintenance).", "partly"),
        _item("Third-party provision and transfer abroad (Arts. 27, 28)", "The egress guard refuses connections to "
              "anything but this machine and the allow-list" + (f" ({'; '.join(f['allow_list'])})" if f["allow_list"]
                                                                 else "") + "; every export is audited.",
              "Confirm every allow-listed server is yours and where it is; record any provision to third parties "
              "(Arts. 29, 30).", egress_status),
        _item("Leakage reports (Art. 26)", "Audit records and refused connections help establish what happened.",
              "Report to the Personal Information Protection Commission and notify people when required.",
              "operator"),
        _item("Disclosure, correction, deletion and cessation requests (Arts. 33–35)", "`shuken erase --subject` "
              f"deletes a person's content with a receipt ({f['erasures']} performed); consent withdrawal can "
              "delete captured records; audit export supports disclosure.", "Accept requests, verify identity, "
              "answer in time; corrections are made by editing the source documents.", "partly"),
    ]
    return {"japan_ai_guidelines": guidelines, "appi": appi}


def _model_card(manifest, verified: tuple[bool, str] | None) -> dict:
    meta = manifest.metadata or {}
    address = upstream_address(manifest)
    return {"name": manifest.name, "engine": manifest.engine, "format": manifest.format,
            "runs": f"on an on-prem server at {model_origin(manifest)}" if address else "on this machine",
            "architecture": meta.get("architecture"), "model_name": meta.get("model_name"),
            "parameters": meta.get("parameters"), "parameters_human": meta.get("parameters_human"),
            "quantization": meta.get("quantization"), "context_length": meta.get("context_length"),
            "embedding_length": meta.get("embedding_length"), "vocabulary_size": meta.get("vocabulary_size"),
            "capabilities": manifest.capabilities, "license": manifest.license, "sha256": manifest.sha256,
            "size": human_bytes(manifest.size_bytes) if manifest.size_bytes else None, "origin": model_origin(manifest),
            "added_at": manifest.added_at.isoformat(),
            "verified": None if verified is None or not manifest.sha256 else verified[0],
            "verification": None if verified is None else verified[1]}


def build_report(svc, subject: Subject, *, fmt: str = "json", verify_models: bool = True, show_progress: bool = False,
                 listen: tuple[str, int] | None = None, explicit_host: bool | None = None) -> dict:
    """The report's data for the subject's workspace (auditors, admins, owners); records a DataExported event."""
    workspace = subject.workspace
    require("audit:read", Resource("compliance-report", workspace), subject)
    info = svc.directory.workspace(subject)
    policy = WorkspacePolicy.load(info["policy"])
    settings, guard = svc.settings, egress.current_guard()
    host, port = listen or (settings.host, settings.port)
    explicit = "host" in settings.model_fields_set if explicit_host is None else explicit_host

    manifests = svc.registry.list()
    models = [_model_card(m, svc.registry.verify(m, show_progress) if verify_models else None) for m in manifests]
    chain = svc.audit.verify(workspace)
    with svc.db.session() as session:
        roles = _counts(session, MembershipRow.role, MembershipRow.workspace == workspace)
        actions = _counts(session, AuditEventRow.action, AuditEventRow.workspace == workspace)
        first, last = session.execute(select(func.min(AuditEventRow.occurred_at), func.max(AuditEventRow.occurred_at))
                                      .where(AuditEventRow.workspace == workspace)).one()
        last_sweep = session.scalar(select(func.max(AuditEventRow.occurred_at)).where(
            AuditEventRow.workspace == workspace, AuditEventRow.action == ev.RetentionSwept.action))
        exports = _counts(session, AuditEventRow.resource, AuditEventRow.workspace == workspace,
                          AuditEventRow.action == ev.DataExported.action)
        refusals = session.scalar(select(func.count()).select_from(AuditEventRow).where(
            AuditEventRow.workspace == SYSTEM_WORKSPACE, AuditEventRow.action == ev.EgressRefused.action))
        content_blobs = session.scalar(select(func.count()).select_from(AuditContentRow)
                                       .where(AuditContentRow.workspace == workspace))
        consent = consent_counts(session, workspace)
        consent_changes = _counts(session, ConsentEventRow.granted, ConsentEventRow.workspace == workspace)
        collections = session.scalar(select(func.count()).select_from(CollectionRow)
                                     .where(CollectionRow.workspace == workspace))
        documents = session.scalar(select(func.count()).select_from(DocumentRow).join(
            CollectionRow, CollectionRow.id == DocumentRow.collection_id).where(CollectionRow.workspace == workspace))
        conversations = session.scalar(select(func.count()).select_from(ConversationRow)
                                       .where(ConversationRow.workspace == workspace))
    checkpoint = latest_checkpoint(svc.db, workspace)
    probes = [{"address": f"{h}:{p}", **((lambda d: {"allowed": d.allowed, "reason": d.reason})(guard.decide(h, p))
                                         if guard else {"allowed": None, "reason": "no guard installed"})}
              for h, p in PROBES]
    allows = guard.policy.describe() if guard else []
    retention = retention_days(policy)
    listening = listen_check(host, port, explicit, settings.sovereign)
    facts = {"guard": bool(guard and guard.installed), "chain_ok": chain.ok, "checkpoints": chain.checkpoints,
             "pii_logging": policy.pii_before_logging, "capture": policy.training_capture,
             "content_forever": policy.audit_content and retention["audit_content"] is None,
             "allow_list": [text for text, _network in guard.policy.allow_list()] if guard else [],
             "retention_set": all(retention[k] for k in ("conversations", "files")),
             "erasures": actions.get(ev.SubjectErased.action, 0), "oversight": policy.human_oversight,
             "models_ok": all(m["verified"] is not False for m in models)}
    report = {
        "title": "Compliance report", "generated_at": datetime.now(timezone.utc).isoformat(),
        "generated_by": subject.actor,
        "workspace": {"id": workspace, "display_name": info["display_name"], "created_at": info["created_at"],
                      "members": info["members"]},
        "system": {"name": "Shuken", "version": __version__, "machine": platform.node(),
                   "operating_system": platform.platform(), "python": platform.python_version(),
                   "home": str(settings.home_dir), "listening": f"{host}:{port}", "listening_note": listening.detail,
                   "sovereign_mode": settings.sovereign, "local_models": sum(1 for m in manifests
                                                                              if not upstream_address(m)),
                   "remote_models": [model_origin(m) for m in manifests if upstream_address(m)]},
        "models": models,
        "data": {"stores": storage_locations(settings, svc.audit),
                 "counts": {"collections": collections, "documents": documents, "conversations": conversations,
                            "audit_content_items": content_blobs, "captured_training_records":
                                consent["captured_records"]},
                 "egress": {"guard_installed": facts["guard"], "allows": allows, "probes": probes,
                            "refused_connections": refusals},
                 "exports": exports, "log_prompts": settings.log_prompts},
        "audit": {"records": chain.records, "chain_ok": chain.ok, "problem": chain.problem,
                  "checkpoints": chain.checkpoints, "latest_checkpoint": checkpoint,
                  "signing_public_key": svc.audit.public_key_hex(), "first_record_at": first, "last_record_at": last,
                  "by_action": dict(sorted(actions.items())),
                  "record_fields": {name: RECORD_FIELDS[name] for name in CHAINED_FIELDS},
                  "content_kept": policy.audit_content, "content_retention_days": retention["audit_content"],
                  "pii_before_logging": policy.pii_before_logging},
        "transparency": {"ai_notice": policy.ai_notice,
                         "api": "Every API answer is machine-generated and names the model that produced it "
                                "(the `model` field of each response)."},
        "oversight": {"human_oversight": policy.human_oversight,
                      "roles": {role: roles.get(role, 0) for role in ROLES},
                      "overseers": {role: {"members": roles.get(role, 0), "may": sorted(ROLE_ACTIONS[role])}
                                    for role in OVERSIGHT_ROLES}},
        "retention": {"training_capture": policy.training_capture, **consent,
                      "consent_grants": consent_changes.get(True, 0),
                      "consent_withdrawals": consent_changes.get(False, 0),
                      "erasures": facts["erasures"], "retention_days": retention, "last_retention_sweep": last_sweep,
                      "retention_sweeps": actions.get(ev.RetentionSwept.action, 0)},
        "pii": {"stages": [{"setting": name, "applies_to": what, "action": getattr(policy, name),
                            "meaning": PII_ACTIONS[getattr(policy, name)]} for name, what in PII_STAGES.items()],
                "entities": list(policy.pii_entities or ENTITY_TYPES), "all_entities": policy.pii_entities is None},
        "checklists": checklists(facts),
    }
    report["export_record"] = svc.bus.emit(ev.DataExported(
        workspace=workspace, actor=subject.actor, resource="compliance-report", format=fmt))
    return report


def _when(value: str | None) -> str:
    """An ISO-8601 time as people read it: 2026-11-23 22:26 UTC."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    # autoescape: every value (workspace names, notices, model metadata) is data, never markup.
    env = Environment(loader=PackageLoader("shuken", "reports/templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["dash"] = lambda value: "—" if value is None or value == "" else value
    env.filters["when"] = _when
    return env.get_template("compliance.html.j2")


def render_html(report: dict) -> str:
    return _template().render(r=report)


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
