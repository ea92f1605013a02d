"""`shuken compliance report` (real CLI process) and the report endpoints on a real server: the counts come from the
workspace's real users, consent, erasure and retention records; HTML escapes every value; generating a report is
audited; auditors get the report, members do not; the sovereignty report is for admins only."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from shuken.config import Settings
from shuken.governance.egress import NOT_ALLOWED
from shuken.governance.identity import Subject
from shuken.services import Services

SHUKEN = [sys.executable, "-m", "shuken.cli"]
BUNDLED = {"smollm2-135m-instruct", "gemma-3-270m", "multilingual-e5-small"}
SCRIPT_NAME = "<script>alert(1)</script>"
NOTICE = "AIが回答します。<img src=x onerror=alert(2)> Check the sources."
STATUSES = {"met", "partly", "operator", "attention"}


def shuken(*args: str, home: Path, timeout: float = 300):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "SHUKEN_HOME": str(home)}
    return subprocess.run(SHUKEN + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def audit_rows(home: Path, workspace: str, action: str | None = None) -> list[dict]:
    with sqlite3.connect(home / "shuken.db") as db:
        db.row_factory = sqlite3.Row
        query = "SELECT * FROM audit_events WHERE workspace = ?" + (" AND action = ?" if action else "")
        params = (workspace, action) if action else (workspace,)
        return [dict(row) for row in db.execute(query + " ORDER BY seq", params)]


@pytest.fixture(scope="module")
def acme_home(tmp_path_factory) -> Path:
    """Workspace 'acme': one owner, admin, viewer and auditor, three members of whom two granted consent and one
    withdrew it; one member erased afterwards; retention limits and one sweep."""
    home = tmp_path_factory.mktemp("compliance-home")
    svc = Services.open(Settings(home=home))
    try:
        directory, operator = svc.directory, Subject.operator("acme")
        directory.create_workspace("acme", SCRIPT_NAME)
        directory.update_policy(operator, {"training_capture": "opt-in", "retention_conversations_days": 30,
                                           "retention_files_days": 90, "ai_notice": NOTICE, "pii_in_answers": "redact",
                                           "pii_entities": ["EMAIL_ADDRESS", "PHONE_NUMBER"]})
        for email, role in (("owner@acme.example", "owner"), ("admin@acme.example", "admin"),
                            ("viewer@acme.example", "viewer"), ("audit@acme.example", "auditor"),
                            ("a@acme.example", "member"), ("b@acme.example", "member"), ("c@acme.example", "member")):
            directory.create_user(operator, email, role)
        for email, granted in (("a", True), ("b", True), ("c", True), ("c", False)):
            member = directory.member("acme", f"{email}@acme.example")
            with svc.db.session() as session:
                subject = directory.subject_for(session, "acme", member.user_id)
            svc.consent.set(subject, granted)
        svc.erasure.erase("b@acme.example", workspace="acme")
        svc.retention.sweep(actor="operator")
    finally:
        svc.close()
    return home


def report_json(home: Path, tmp_path: Path) -> dict:
    out = tmp_path / "report.json"
    result = shuken("compliance", "report", "--workspace", "acme", "--format", "json", "--out", str(out), home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def test_json_report_has_every_section_and_the_real_counts(acme_home, tmp_path):
    records_before = len(audit_rows(acme_home, "acme"))
    report = report_json(acme_home, tmp_path)
    assert {"system", "models", "data", "audit", "transparency", "oversight", "retention", "pii",
            "checklists"} <= set(report)
    assert report["workspace"] == {**report["workspace"], "id": "acme", "display_name": SCRIPT_NAME, "members": 6}
    assert report["system"]["sovereign_mode"] is True and report["system"]["home"] == str(acme_home)

    cards = {card["name"]: card for card in report["models"]}
    assert set(cards) == BUNDLED and all(card["verified"] for card in cards.values())
    smol = cards["smollm2-135m-instruct"]
    assert (smol["architecture"], smol["quantization"], smol["context_length"]) == ("llama", "Q4_1", 8192)
    assert smol["parameters"] > 100_000_000 and smol["license"] == "Apache-2.0" and len(smol["sha256"]) == 64

    egress = report["data"]["egress"]
    assert egress["guard_installed"] is True
    assert egress["probes"][0] == {"address": "203.0.113.1:443", "allowed": False, "reason": NOT_ALLOWED}
    assert {store["kind"] for store in report["data"]["stores"]} >= {"database", "uploaded files", "models", "logs"}

    audit = report["audit"]
    assert audit["chain_ok"] is True and audit["records"] == records_before
    assert audit["by_action"]["subject.erased"] == 1 and audit["by_action"]["consent.changed"] == 4
    assert audit["content_kept"] is False and "prev_hash" in audit["record_fields"]

    assert report["transparency"]["ai_notice"] == NOTICE
    assert report["oversight"]["roles"] == {"owner": 1, "admin": 1, "member": 2, "viewer": 1, "auditor": 1}
    assert report["oversight"]["overseers"]["auditor"] == {"members": 1, "may": ["audit:read"]}
    retention = report["retention"]
    assert retention["training_capture"] == "opt-in"
    assert retention["users_consenting"] == 1  # a; c withdrew; b was erased (no longer a member)
    assert (retention["consent_grants"], retention["consent_withdrawals"]) == (3, 1)
    assert retention["erasures"] == 1 and retention["retention_sweeps"] == 1 and retention["last_retention_sweep"]
    assert retention["retention_days"] == {"conversations": 30, "audit_content": None, "files": 90, "training": None}
    assert report["pii"]["entities"] == ["EMAIL_ADDRESS", "PHONE_NUMBER"] and not report["pii"]["all_entities"]
    assert {s["setting"]: s["action"] for s in report["pii"]["stages"]}["pii_in_answers"] == "redact"

    guidelines, appi = report["checklists"]["japan_ai_guidelines"], report["checklists"]["appi"]
    assert len(guidelines) == 10 and {"Human-centric", "Fairness", "Transparency", "Accountability"} <= {
        item["topic"] for item in guidelines}
    assert all(item["status"] in STATUSES and item["shuken"] and item["operator"] for item in guidelines + appi)
    by_topic = {item["topic"].split(" (")[0]: item for item in appi}
    assert by_topic["Accuracy, and deletion when no longer needed"]["status"] == "met"  # both limits set
    assert by_topic["Third-party provision and transfer abroad"]["status"] == "met"  # guard on, nothing allow-listed

    exported = audit_rows(acme_home, "acme", "data.exported")[-1]
    assert exported["resource"] == "compliance-report" and json.loads(exported["details"]) == {"format": "json"}
    assert exported["record_hash"] == report["export_record"]


def test_html_report_is_readable_and_escapes_every_value(acme_home, tmp_path):
    out = tmp_path / "report.html"
    result = shuken("compliance", "report", "-w", "acme", "--format", "html", "--out", str(out), home=acme_home)
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    for heading in ("The system", "Models", "Record-keeping and audit (EU AI Act, Art. 12)",
                    "Transparency to users (EU AI Act, Art. 50)", "Human oversight", "Retention, consent and erasure",
                    "Personal data (PII) detection", "AI Guidelines for Business",
                    "Protection of Personal Information"):
        assert heading in html, heading
    assert "<th>Erasures performed</th><td>1</td>" in html
    assert "<th>Users currently consenting</th><td>1" in html
    assert "http://" not in html and "https://" not in html  # self-contained: no external asset
    assert json.loads(audit_rows(acme_home, "acme", "data.exported")[-1]["details"]) == {"format": "html"}


def test_a_broken_chain_is_reported_and_needs_attention(acme_home, tmp_path):
    home = tmp_path / "tampered"
    shutil.copytree(acme_home, home, ignore=shutil.ignore_patterns("models"))
    with sqlite3.connect(home / "shuken.db") as db:
        assert db.execute("UPDATE audit_events SET outcome = 'failure' WHERE workspace = 'acme' AND seq = 2"
                          ).rowcount == 1
    report = report_json(home, tmp_path)
    assert report["audit"]["chain_ok"] is False and "record 2" in report["audit"]["problem"]
    statuses = {item["topic"]: item["status"] for item in report["checklists"]["japan_ai_guidelines"]}
    assert statuses["Accountability"] == "attention" and statuses["Ensuring security"] == "attention"


def test_unknown_workspace_and_format_are_errors(acme_home):
    missing = shuken("compliance", "report", "-w", "nowhere", "--format", "json", home=acme_home)
    assert missing.returncode == 1 and "nowhere" in missing.stderr and missing.stdout == ""
    bad = shuken("compliance", "report", "-w", "acme", "--format", "pdf", home=acme_home)
    assert bad.returncode == 2 and "html or json" in bad.stderr


# -- HTTP ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("report-server-home"))
    home = running.home
    keys = {}
    try:
        assert shuken("workspaces", "create", "other", home=home).returncode == 0
        for email, role, scopes in (("audit@example.org", "auditor", "audit:read"),
                                    ("member@example.org", "member", None)):
            assert shuken("users", "create", email, "--role", role, home=home).returncode == 0
            created = shuken("keys", "create", "--user", email, "--name", role,
                             *(["--scopes", scopes] if scopes else []), home=home)
            assert created.returncode == 0, created.stderr
            keys[role] = created.stdout.strip()
        keys["admin"] = running.api_key
        yield running, keys
    finally:
        running.stop()


def get(server, path: str, key: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=120)


def test_auditor_gets_the_compliance_report_member_does_not(report_server):
    server, keys = report_server
    response = get(server, "/admin/compliance-report?format=json", keys["auditor"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["workspace"]["id"] == "default" and report["data"]["egress"]["guard_installed"] is True
    assert report["oversight"]["roles"]["auditor"] == 1 and report["oversight"]["roles"]["owner"] == 1
    html = get(server, "/admin/compliance-report?format=html&verify_models=false", keys["auditor"])
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<h1>Compliance report" in html.text
    denied = get(server, "/admin/compliance-report?format=json", keys["member"])
    assert denied.status_code == 403 and "audit:read" in denied.json()["error"]["message"]
    assert get(server, "/admin/compliance-report?format=pdf", keys["auditor"]).status_code == 400


def test_sovereignty_report_is_for_admins_and_shows_only_their_workspace(report_server):
    server, keys = report_server
    response = get(server, "/admin/sovereignty?verify_models=false", keys["admin"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True, report["failed"]
    egress = {check["name"]: check for check in report["sections"]["egress"]}
    assert egress["egress guard installed"]["installed"] is True  # the server process's own guard
    assert egress["refuses 203.0.113.1:443"]["reason"] == NOT_ALLOWED
    assert report["sections"]["listening"][0]["host"] == "127.0.0.1"
    names = {check["name"] for section in ("workspaces", "audit") for check in report["sections"][section]}
    assert "audit chain default" in names and not any("other" in name for name in names)
    for role in ("auditor", "member"):
        assert get(server, "/admin/sovereignty", keys[role]).status_code == 403
