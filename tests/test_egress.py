"""The sovereignty egress guard and the offline switches.

Policy decisions are pure and tested here. An audit hook can never be removed, so everything that installs
the guard runs in a child process, and that child runs inside a fresh network namespace (`unshare --net`)
with only `lo` and no route: even a broken guard could not send a packet off this machine. A private mount
namespace gives the child its own /etc/hosts and an /etc/resolv.conf that points at a fake DNS server on
127.0.0.1, which records every query it receives (so a refused lookup is shown to leave nothing behind).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from shuken.governance.egress import (
    NOT_ALLOWED,
    OFFLINE_ENVIRONMENT,
    Decision,
    EgressPolicy,
    EgressRefused,
    apply_offline_switches,
)

IP = "/usr/sbin/ip"

# ---------------------------------------------------------------------------------------------- pure policy


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST.", b"127.0.0.1",
                                  "::ffff:127.0.0.1"])
def test_loopback_is_always_allowed(host):
    decision = EgressPolicy().decide(host, 443)
    assert decision.allowed and decision.reason == "loopback"


@pytest.mark.parametrize("host", ["10.1.2.3", "203.0.113.5", "2001:db8::1", "example.com", "::ffff:10.1.2.3",
                                  "::ffff:203.0.113.5", "localhost.example.com", "<broadcast>"])
def test_anything_else_is_refused_by_default(host):
    assert EgressPolicy().decide(host, 80) == EgressPolicy().decide(host) == Decision(False, NOT_ALLOWED)


def test_cidr_ip_and_hostname_entries():
    policy = EgressPolicy(["10.0.0.0/8", "192.0.2.10", "GPU-box.Internal", "fd00::/8"])
    assert policy.decide("10.1.2.3", 443).allowed
    assert policy.decide("10.255.255.255").reason == "allow-listed: 10.0.0.0/8"
    assert policy.decide("::ffff:10.1.2.3", 443).allowed  # the same destination, IPv4-mapped
    assert not policy.decide("11.0.0.1", 443).allowed
    assert policy.decide("192.0.2.10", 1).allowed and not policy.decide("192.0.2.11", 1).allowed
    assert policy.decide("gpu-box.internal", 8000).allowed and policy.decide("gpu-box.internal.").allowed
    assert not policy.decide("other-box.internal", 8000).allowed
    assert not policy.decide("box.internal", 8000).allowed  # no suffix or wildcard matching
    assert policy.decide("fd00::5", 443).allowed and not policy.decide("fe80::5", 443).allowed


def test_a_port_entry_allows_only_that_port():
    policy = EgressPolicy(["10.0.0.5:8080", "gpu-box.internal:8000", "[fd00::/8]:443"])
    assert policy.decide("10.0.0.5", 8080).allowed
    refused = policy.decide("10.0.0.5", 9090)
    assert not refused.allowed and refused.reason == "allow-listed only on port 8080, not 9090"
    assert policy.decide("gpu-box.internal", 8000).allowed and not policy.decide("gpu-box.internal", 80).allowed
    assert policy.decide("fd00::1", 443).allowed and not policy.decide("fd00::1", 80).allowed
    # No port: the host itself (what a DNS lookup needs), allowed whatever the port entry says.
    assert policy.decide("gpu-box.internal").allowed


@pytest.mark.parametrize("entry", ["", "10.0.0.0/8:0", "10.0.0.5:99999", "host:http", "bad host!", "[::1",
                                   "[::1]x", "a/b"])
def test_bad_entries_are_rejected(entry):
    with pytest.raises(ValueError, match="egress_allow entry"):
        EgressPolicy([entry])


def test_describe_lists_loopback_then_the_entries():
    policy = EgressPolicy(["10.0.0.0/8", "gpu-box.internal:8000", "10.0.0.0/8"])
    assert policy.describe() == ["loopback: 127.0.0.0/8, ::1, localhost (always)", "unix sockets (always)",
                                 "10.0.0.0/8 (any port)", "gpu-box.internal:8000"]


def test_egress_refused_is_a_connection_error_with_a_helpful_message():
    error = EgressRefused("203.0.113.5", 443, NOT_ALLOWED)
    assert isinstance(error, ConnectionRefusedError) and isinstance(error, OSError)
    assert str(error) == (
        "Shuken sovereign mode refused an outbound connection to 203.0.113.5:443 (not loopback, not in "
        "SHUKEN_EGRESS_ALLOW). If this destination is an on-prem service you trust, add it to egress_allow.")
    assert (error.host, error.port, error.reason) == ("203.0.113.5", 443, NOT_ALLOWED)
    assert "refused to resolve example.invalid" in str(EgressRefused("example.invalid", None, NOT_ALLOWED, "resolve"))
    assert "a datagram to [2001:db8::1]:53" in str(EgressRefused("2001:db8::1", 53, NOT_ALLOWED, "sendto"))


# ----------------------------------------------------------------------------------------- offline switches


def test_offline_switches_are_forced_and_overrides_reported():
    environ = {"HF_HUB_OFFLINE": "0", "WANDB_MODE": "offline", "ANONYMIZED_TELEMETRY": "false", "PATH": "/bin"}
    changed = apply_offline_switches(environ)
    assert {k: environ[k] for k in OFFLINE_ENVIRONMENT} == OFFLINE_ENVIRONMENT | {"ANONYMIZED_TELEMETRY": "false"}
    assert environ["PATH"] == "/bin"
    assert "overrode HF_HUB_OFFLINE='0'" in changed["HF_HUB_OFFLINE"]
    assert "WANDB_MODE" not in changed and "ANONYMIZED_TELEMETRY" not in changed  # already (equivalently) set
    assert changed["DO_NOT_TRACK"] == "set to 1"
    assert set(changed) == set(OFFLINE_ENVIRONMENT) - {"WANDB_MODE", "ANONYMIZED_TELEMETRY"}
    assert apply_offline_switches(environ) == {}
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "OTEL_SDK_DISABLED",
                 "FASTAPI_OTEL_AUTO_CONFIGURE", "RAY_USAGE_STATS_ENABLED", "GRADIO_ANALYTICS_ENABLED"):
        assert name in OFFLINE_ENVIRONMENT


# ------------------------------------------------------------------------ the installed guard, sandboxed

PRELUDE = '''
import json, os, socket, sys, threading
# Refuse to run anywhere but an isolated network namespace with nothing but lo and no route.
assert os.readlink("/proc/self/ns/net") != sys.argv[1], "not in a separate network namespace"
assert [name for _, name in socket.if_nameindex()] == ["lo"], socket.if_nameindex()
assert open("/proc/net/route").read().splitlines()[1:] == [], "the namespace has a route"

DNS_QUERIES = []
def _fake_dns():  # answers NXDOMAIN to everything, records each queried name
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    def serve():
        while True:
            data, peer = server.recvfrom(2048)
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode()); i += 1 + data[i]
            DNS_QUERIES.append(".".join(labels))
            server.sendto(data[:2] + b"\\x81\\x83\\x00\\x01" + bytes(6) + data[12:i + 5], peer)
    threading.Thread(target=serve, daemon=True).start()
_fake_dns()

def chain(error):  # every exception in a cause/context chain, exception groups included
    seen, todo = [], [error]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return seen

def outcome(fn):
    from shuken.governance.egress import EgressRefused
    try:
        value = fn()
    except Exception as e:
        guard_errors = [c for c in chain(e) if isinstance(c, EgressRefused)]
        return {"error": type(e).__name__, "message": str(e), "errno": getattr(e, "errno", None),
                "refused": str(guard_errors[0]) if guard_errors else None,
                "guard_raised_it": type(e) is EgressRefused}
    return {"ok": repr(value)}

RESULT = {}
'''

HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n192.0.2.20 gpu-box.internal\n"


@pytest.fixture(scope="module")
def sandbox_ready():
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None or not os.path.exists(IP):
        pytest.fail(f"the guard tests need root, unshare and {IP} to build a network namespace with no route "
                    f"(euid={os.geteuid()}, unshare={unshare})")
    probe = subprocess.run([unshare, "--net", "--mount", IP, "link", "set", "lo", "up"], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        pytest.fail(f"`unshare --net --mount` is not usable here, so the guard cannot be tested without risking "
                    f"real egress: {probe.stderr.strip()}")
    return unshare


def run_sandboxed(sandbox_ready, tmp_path, body: str) -> dict:
    script = tmp_path / "guarded.py"
    script.write_text(PRELUDE + textwrap.dedent(body) + '\nprint("RESULT " + json.dumps(RESULT, default=str))\n')
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text(HOSTS)
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    setup = f'set -e; mount --bind "$1" /etc/hosts; mount --bind "$2" /etc/resolv.conf; {IP} link set lo up; ' \
            'shift 2; exec "$@"'
    command = [sandbox_ready, "--net", "--mount", "sh", "-c", setup, "sh", str(hosts), str(resolv),
               sys.executable, str(script), os.readlink("/proc/self/ns/net")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"sandboxed child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1][len("RESULT "):])


def test_guard_refuses_egress_and_lets_loopback_and_the_allow_list_through(sandbox_ready, tmp_path):
    r = run_sandboxed(sandbox_ready, tmp_path, '''
        import asyncio, http.server, logging
        import httpx
        from datetime import datetime, timezone
        from shuken.governance.egress import EgressPolicy, current_guard, install_guard

        records = []
        class Capture(logging.Handler):
            def emit(self, record):
                records.append([record.levelname, record.host, record.port, record.getMessage()])
        logging.getLogger("shuken.egress").addHandler(Capture())

        refusals = []
        assert current_guard() is None
        guard = install_guard(EgressPolicy(["192.0.2.10", "db.internal", "gpu-box.internal:8000"]), refusals.append)
        RESULT["installed"] = [guard.installed, current_guard() is guard]

        # (a) the guard's own error, for TCP connect, connect_ex, UDP sendto and IPv6 (mapped or not)
        RESULT["a"] = outcome(lambda: socket.create_connection(("203.0.113.5", 443), timeout=2))
        RESULT["connect_ex"] = outcome(lambda: socket.socket().connect_ex(("203.0.113.5", 80)))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        RESULT["sendto"] = outcome(lambda: udp.sendto(b"x", ("203.0.113.5", 53)))
        RESULT["v6"] = outcome(lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 443)))
        RESULT["mapped"] = outcome(lambda: socket.socket(socket.AF_INET6).connect(("::ffff:203.0.113.5", 443)))

        # (b) httpx, sync and async: a connection error caused by the guard
        RESULT["httpx"] = outcome(lambda: httpx.get("http://198.51.100.7/", timeout=3))
        async def fetch():
            async with httpx.AsyncClient(timeout=3) as client:
                return await client.get("http://198.51.100.7/")
        RESULT["httpx_async"] = outcome(lambda: asyncio.run(fetch()))

        # (c) lookups of names and reverse lookups of addresses that are not allow-listed
        RESULT["c"] = outcome(lambda: socket.getaddrinfo("example.invalid", 443))
        RESULT["gethostbyname"] = outcome(lambda: socket.gethostbyname("example.invalid"))
        RESULT["reverse"] = outcome(lambda: socket.gethostbyaddr("203.0.113.5"))
        RESULT["httpx_name"] = outcome(lambda: httpx.get("http://example.invalid/", timeout=3))

        # (d) a loopback server is reachable through the guard, by address and by name
        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"hello")
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        RESULT["d"] = [httpx.get(f"http://127.0.0.1:{port}/").text, httpx.get(f"http://localhost:{port}/").text]

        # (e) allow-listed destinations pass the guard and meet the kernel's "no route" instead
        RESULT["e"] = outcome(lambda: socket.create_connection(("192.0.2.10", 443), timeout=2))
        RESULT["e_name"] = outcome(lambda: socket.create_connection(("gpu-box.internal", 8000), timeout=2))
        RESULT["e_name_other_port"] = outcome(lambda: socket.create_connection(("gpu-box.internal", 9000), timeout=2))
        RESULT["e_dns"] = outcome(lambda: socket.getaddrinfo("db.internal", 5432))
        RESULT["doctor"] = [guard.decide("192.0.2.20", 8000).reason, guard.decide("198.51.100.7", 80).allowed]

        # (f) one callback call and one log record per refusal
        RESULT["dns_queries"] = DNS_QUERIES
        RESULT["refusals"] = [[x.host, x.port, x.kind, x.reason] for x in refusals]
        RESULT["times_utc"] = all(x.at.tzinfo is timezone.utc and
                                  abs((datetime.now(timezone.utc) - x.at).total_seconds()) < 60 for x in refusals)
        RESULT["count"] = guard.refusals
        RESULT["logs"] = records
    ''')
    assert r["installed"] == [True, True]
    assert r["a"] == {"error": "EgressRefused", "errno": None, "guard_raised_it": True, "message": (
        "Shuken sovereign mode refused an outbound connection to 203.0.113.5:443 (not loopback, not in "
        "SHUKEN_EGRESS_ALLOW). If this destination is an on-prem service you trust, add it to egress_allow."),
        "refused": r["a"]["message"]}
    for case in ("connect_ex", "sendto", "v6", "mapped", "c", "gethostbyname", "reverse"):
        assert r[case]["guard_raised_it"], (case, r[case])
    assert "refused a datagram to 203.0.113.5:53" in r["sendto"]["message"]
    assert "refused an outbound connection to [::ffff:203.0.113.5]:443" in r["mapped"]["message"]
    assert r["c"]["message"].startswith("Shuken sovereign mode refused to resolve example.invalid (")

    for case in ("httpx", "httpx_async", "httpx_name"):
        assert r[case]["error"] == "ConnectError" and r[case]["refused"], (case, r[case])
    assert "198.51.100.7:80" in r["httpx"]["refused"] and "198.51.100.7:80" in r["httpx_async"]["refused"]
    assert "resolve example.invalid" in r["httpx_name"]["refused"]

    assert r["d"] == ["hello", "hello"]

    for case in ("e", "e_name"):
        assert r[case]["refused"] is None and r[case]["errno"] == 101, (case, r[case])  # ENETUNREACH
        assert "unreachable" in r[case]["message"]
    assert r["e_name_other_port"]["guard_raised_it"]
    assert "allow-listed only on port 8000, not 9000" in r["e_name_other_port"]["message"]
    assert r["e_dns"]["error"] == "gaierror" and r["e_dns"]["refused"] is None  # asked the (fake) DNS: NXDOMAIN
    assert r["doctor"] == ["gpu-box.internal resolves to it; allow-listed: gpu-box.internal:8000", False]

    # Refused names never reached the resolver; the allow-listed one did.
    assert "db.internal" in r["dns_queries"] and "example.invalid" not in r["dns_queries"], r["dns_queries"]
    expected = [
        ["203.0.113.5", 443, "connect", NOT_ALLOWED], ["203.0.113.5", 80, "connect", NOT_ALLOWED],
        ["203.0.113.5", 53, "sendto", NOT_ALLOWED], ["2001:db8::1", 443, "connect", NOT_ALLOWED],
        ["::ffff:203.0.113.5", 443, "connect", NOT_ALLOWED], ["198.51.100.7", 80, "connect", NOT_ALLOWED],
        ["198.51.100.7", 80, "connect", NOT_ALLOWED], ["example.invalid", None, "resolve", NOT_ALLOWED],
        ["example.invalid", None, "resolve", NOT_ALLOWED], ["203.0.113.5", None, "resolve", NOT_ALLOWED],
        ["example.invalid", None, "resolve", NOT_ALLOWED],
        ["192.0.2.20", 9000, "connect", "allow-listed only on port 8000, not 9000"],
    ]
    assert r["refusals"] == expected
    assert r["times_utc"] and r["count"] == len(expected)
    assert [[level, host, port] for level, host, port, _ in r["logs"]] == [["WARNING", h, p] for h, p, *_ in expected]
    assert all(message.startswith("Shuken sovereign mode refused") for *_, message in r["logs"])


def test_a_misbehaving_callback_cannot_break_the_guard_and_install_is_idempotent(sandbox_ready, tmp_path):
    r = run_sandboxed(sandbox_ready, tmp_path, '''
        from shuken.governance.egress import EgressPolicy, EgressRefused, current_guard, install_guard

        listener = socket.create_server(("127.0.0.1", 0))
        calls = []
        def raising(refusal):
            calls.append(["raising", refusal.host])
            raise RuntimeError("callback bug")
        guard = install_guard(EgressPolicy(), raising)
        RESULT["raising"] = outcome(lambda: socket.create_connection(("203.0.113.5", 443)))

        nested = []
        def phoning_home(refusal):  # tries to report the refusal over the network, then locally
            calls.append(["phoning_home", refusal.host])
            for address in [("203.0.113.99", 443), listener.getsockname()]:
                try:
                    socket.create_connection(address, timeout=2).close()
                    nested.append(["connected", address[0]])
                except OSError as e:
                    nested.append([type(e).__name__, address[0]])
        again = install_guard(EgressPolicy(["192.0.2.10"]), phoning_home)
        RESULT["same_guard"] = again is guard is current_guard()
        RESULT["describe"] = guard.policy.describe()
        RESULT["phoning_home"] = outcome(lambda: socket.create_connection(("203.0.113.6", 443)))
        RESULT["allowed_after_reinstall"] = outcome(lambda: socket.create_connection(("192.0.2.10", 443), timeout=2))

        guard.allow(["198.51.100.0/24:80"])  # at run time, e.g. an upstream model registered
        RESULT["allowed_at_run_time"] = outcome(lambda: socket.create_connection(("198.51.100.7", 80), timeout=2))
        RESULT["calls"], RESULT["nested"], RESULT["count"] = calls, nested, guard.refusals
    ''')
    assert r["raising"]["guard_raised_it"] and "203.0.113.5:443" in r["raising"]["message"]
    assert r["same_guard"] is True
    assert r["describe"][2:] == ["192.0.2.10 (any port)"]
    assert r["phoning_home"]["guard_raised_it"] and "203.0.113.6:443" in r["phoning_home"]["message"]
    for case in ("allowed_after_reinstall", "allowed_at_run_time"):
        assert r[case]["refused"] is None and r[case]["errno"] == 101, (case, r[case])
    # Called once per refusal, never re-entered for the callback's own refused connection.
    assert r["calls"] == [["raising", "203.0.113.5"], ["phoning_home", "203.0.113.6"]]
    assert r["nested"] == [["EgressRefused", "203.0.113.99"], ["connected", "127.0.0.1"]]
    assert r["count"] == 3


# ------------------------------------------------------------------------------- wired into Shuken itself


def test_sovereign_services_install_the_guard_and_audit_each_refusal(sandbox_ready, tmp_path):
    """`Services.open` in sovereign mode (the default): offline switches forced, the guard installed with
    `egress_allow` and every registered upstream engine allowed, and each refusal in the `_system` audit chain."""
    home = tmp_path / "home"
    r = run_sandboxed(sandbox_ready, tmp_path, f'''
        import os, socket
        os.environ["HF_HUB_OFFLINE"] = "0"  # a stray operator setting must not re-enable downloads
        from shuken.config import Settings
        from shuken.governance.egress import current_guard
        from shuken.services import Services
        svc = Services.open(Settings(home={str(home)!r}, egress_allow=["192.0.2.30"]))
        svc.registry.add_remote("gpu-model", base_url="http://192.0.2.40:8000/v1")
        svc.close()
        svc = Services.open(Settings(home={str(home)!r}, egress_allow=["192.0.2.30"]))  # a restart sees it
        RESULT["hf_offline"] = os.environ["HF_HUB_OFFLINE"]
        RESULT["allows"] = current_guard().policy.describe()
        RESULT["refused"] = outcome(lambda: socket.create_connection(("203.0.113.5", 443), timeout=2))
        RESULT["upstream"] = outcome(lambda: socket.create_connection(("192.0.2.40", 8000), timeout=2))
        svc.bus.flush()
        RESULT["audit"] = [(r["action"], r["resource"], r["outcome"]) for r in svc.audit.rows("_system")]
        RESULT["verify"] = svc.audit.verify("_system").ok
        svc.close()
    ''')
    assert r["hf_offline"] == "1"
    assert any("192.0.2.30" in entry for entry in r["allows"]) and any("192.0.2.40:8000" in e for e in r["allows"])
    assert r["refused"]["guard_raised_it"] and "203.0.113.5:443" in r["refused"]["message"]
    assert r["upstream"]["refused"] is None  # not the guard: the kernel has no route in the namespace
    assert r["audit"] == [["egress.refused", "host:203.0.113.5:443", "refused"]]
    assert r["verify"] is True


def test_sovereign_mode_off_installs_no_guard(tmp_path):
    code = textwrap.dedent(f'''
        from shuken.config import Settings
        from shuken.governance.egress import current_guard
        from shuken.services import Services
        svc = Services.open(Settings(home={str(tmp_path / "home")!r}, sovereign=False))
        print("GUARD", current_guard())
        svc.close()
    ''')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GUARD None" in done.stdout
