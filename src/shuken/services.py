"""The one composition root: wires every service (gateway and web-chat turns included) from one Settings; the app
factory, the CLI and the workers all start here.

The event bus is the one sink for governance events: the audit chain subscribes first (its record hash is
what `emit` returns), then key usage (token quotas) and consented training capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from shuken import native_threads
from shuken.config import Settings
from shuken.gateway.host import ModelHost
from shuken.registry.manifest import upstream_address
from shuken.chat.conversations import ConversationService
from shuken.chat.turns import ChatTurns
from shuken.gateway.gateway import Gateway
from shuken.governance.audit import AuditLog
from shuken.governance.consent import ConsentService
from shuken.governance.directory import Directory, policy_of
from shuken.privacy.erasure import ErasureService
from shuken.governance import egress
from shuken.governance import events as ev
from shuken.governance.events import SYSTEM_WORKSPACE, EventBus
from shuken.governance.identity import DEFAULT_WORKSPACE
from shuken.governance.keys import KeyService
from shuken.privacy.retention import RetentionSweeper
from shuken.governance.sessions import SessionService
from shuken.governance.governor import RequestGovernor
from shuken.knowledge.facade import KnowledgeService
from shuken.registry import ModelRegistry
from shuken.store import Database


def guard_egress(settings: Settings, registry: ModelRegistry, bus: EventBus) -> egress.EgressGuard:
    """Install (once per process) the guard that refuses outbound connections except loopback and the allow-list;
    each refusal is logged by the guard and audited here."""
    def audit_refusal(refusal: egress.Refusal) -> None:
        bus.emit_later(ev.EgressRefused(
            workspace=SYSTEM_WORKSPACE, actor="system", resource=f"host:{refusal.host}:{refusal.port or ''}",
            outcome="refused", kind=refusal.kind, reason=refusal.reason))

    # Registering an upstream engine is the operator's explicit allowance to reach it.
    allow = [*settings.egress_allow, *filter(None, map(upstream_address, registry.list()))]
    return egress.install_guard(egress.EgressPolicy(allow), on_refusal=audit_refusal)


@dataclass
class Services:
    settings: Settings
    db: Database
    bus: EventBus
    audit: AuditLog
    directory: Directory
    keys: KeyService
    consent: ConsentService
    governor: RequestGovernor
    registry: ModelRegistry
    host: ModelHost
    gateway: Gateway
    knowledge: KnowledgeService
    erasure: ErasureService
    retention: RetentionSweeper
    sessions: SessionService
    conversations: ConversationService
    chat: ChatTurns = field(init=False)  # a web-chat turn uses the other services, so it is made last

    @classmethod
    def open(cls, settings: Settings) -> Services:
        native_threads.configure()
        if settings.sovereign:  # before any library that reads these switches is imported
            egress.apply_offline_switches()
        db = Database(settings.database_url)
        db.prepare()
        bus = EventBus()
        audit = AuditLog(db, policy_of, settings.signing_key_path)
        directory = Directory(db, bus)
        keys = KeyService(db, directory, bus)
        consent = ConsentService(db, bus)
        for subscriber in (audit.record, keys.on_event, consent.on_event):
            bus.subscribe(subscriber)
        registry = ModelRegistry(db, settings.models_dir)
        guard = guard_egress(settings, registry, bus) if settings.sovereign else None
        host = ModelHost(registry, settings, on_upstream=(lambda address: guard.allow([address])) if guard else None)
        gateway = Gateway(host, settings)
        knowledge = KnowledgeService(db, settings, host, bus)
        directory.ensure_workspace(DEFAULT_WORKSPACE)  # every install has one; the CLI acts in it by default
        conversations = ConversationService(db)
        services = cls(settings, db, bus, audit, directory, keys, consent, RequestGovernor(directory, bus), registry,
                       host, gateway, knowledge, erasure=ErasureService(db, knowledge, bus),
                       retention=RetentionSweeper(db, knowledge, bus),
                       sessions=SessionService(db, directory, bus,
                                               idle=timedelta(minutes=settings.web_session_idle_minutes),
                                               absolute=timedelta(hours=settings.web_session_hours)),
                       conversations=conversations)
        services.chat = ChatTurns(services, gateway, conversations)
        return services

    def close(self) -> None:
        self.bus.close()
        self.db.dispose()
