"""Browser tests of the Admin pages against a real server: users and roles, API keys (secret shown once, works,
then revoked), workspace settings, the audit viewer, and refusals for members and auditors."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from browser_support import (
    OWNER, PASSWORD, PHONE, assert_accessible, csrf_token, new_page, new_user, owner_api, screenshot, sign_in,
    sign_in_owner,
)
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_owner_overview_and_users(ui_server, page, chromium):
    sign_in_owner(page, ui_server)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.wait_for_url(re.compile(r".*/admin$"))
    assert page.locator("h1").inner_text() == "Administration"
    checks = page.locator("table.checks tbody tr:not(.section-row)")
    assert checks.count() >= 5
    assert page.locator("table.checks .badge").count() == checks.count()
    assert page.locator("#sovereignty .badge").first.is_visible()
    assert page.locator("a[href='/admin/compliance-report']").is_visible()
    screenshot(page, "admin-overview")
    assert_accessible(page)

    # The compliance report downloads as an attachment (and its JSON form parses).
    report = page.request.get(f"{ui_server.root_url}/admin/compliance-report")
    assert report.status == 200 and "attachment" in report.headers["content-disposition"]
    assert "Compliance report" in report.text()
    data = page.request.get(f"{ui_server.root_url}/admin/compliance-report?format=json").json()
    assert data["workspace"]["id"] == "default"

    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Users").click()
    page.wait_for_url(re.compile(r".*/admin/users$"))
    email = f"{unique('clerk')}@example.jp"
    form = page.locator("form[action='/admin/users']")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Display name").fill("Hanako Clerk")
    form.get_by_label("Role").select_option("viewer")
    form.get_by_label("Groups").fill("legal, finance")
    form.get_by_label("Initial password").fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    page.wait_for_url(re.compile(r".*/admin/users\?done=added$"))
    assert "User added" in page.locator(".alert.ok").inner_text()
    row = page.locator(f"tr[data-email='{email}']")
    assert row.locator("select[name=role]").input_value() == "viewer"
    assert row.locator("input[name=groups]").input_value() == "finance, legal"

    # Adding the same person again is refused, and the error is shown on the page with the form kept.
    form = page.locator("form[action='/admin/users']")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Initial password").fill(PASSWORD)
    response_status = []
    page.once("response", lambda response: response_status.append(response.status))
    form.get_by_role("button", name="Add user").click()
    expect(page.locator(".alert.error")).to_be_visible()
    assert "already a member" in page.locator(".alert.error").inner_text()
    assert page.locator("form[action='/admin/users']").get_by_label("E-mail").input_value() == email
    assert response_status == [400]

    # Change the role and groups in the member's row.
    page.goto(f"{ui_server.root_url}/admin/users")
    row = page.locator(f"tr[data-email='{email}']")
    row.locator("select[name=role]").select_option("member")
    row.locator("input[name=groups]").fill("legal")
    row.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/admin/users\?done=updated$"))
    with owner_api(ui_server) as api:
        member = next(u for u in api.get("/v1/admin/users").json()["data"] if u["email"] == email)
    assert member["role"] == "member" and member["groups"] == ["legal"]
    screenshot(page, "admin-users")
    assert_accessible(page)

    # The initial password set in the form signs the new user in.
    other = new_page(chromium)
    try:
        sign_in(other, ui_server.root_url, email, PASSWORD)
        assert "Hanako Clerk" in other.locator(".signout .who").inner_text()
    finally:
        other.context.close()

    # Remove, through the confirmation page.
    row.get_by_role("link", name="Remove…").click()
    page.wait_for_url(re.compile(r".*/admin/users/remove\?email=.*"))
    page.get_by_role("button", name="Remove user").click()
    page.wait_for_url(re.compile(r".*/admin/users\?done=removed$"))
    assert page.locator(f"tr[data-email='{email}']").count() == 0


def test_key_secret_shown_once_works_then_revoked(ui_server, page):
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/admin/keys")
    name = unique("intranet-bot")
    form = page.locator("form[action='/admin/keys']")
    form.get_by_label("User").select_option(OWNER)
    form.get_by_label("Name").fill(name)
    form.get_by_label("chat").check()
    form.get_by_label("knowledge:read").uncheck()
    form.get_by_label("Expires after").fill("30d")
    form.get_by_label("Requests per minute").fill("120")
    form.get_by_label("Tokens per day").fill("250000")
    form.get_by_role("button", name="Create key").click()
    page.wait_for_load_state()

    secret = page.locator(".secret").inner_text().strip()
    assert secret.startswith("sk-shuken-") and len(secret) > 40
    assert "shown only once" in page.locator(".new-secret").inner_text()
    assert secret not in page.url
    row = page.locator("table.keys tbody tr", has=page.get_by_text(name, exact=True))
    key_id = row.get_attribute("data-key-id")
    assert "active" in row.inner_text() and "120" in row.inner_text() and "250,000" in row.inner_text()
    screenshot(page, "admin-keys-secret")
    assert_accessible(page)

    # Reloading the list never shows the secret again.
    page.goto(f"{ui_server.root_url}/admin/keys")
    assert page.locator(".secret").count() == 0
    assert secret not in page.content()

    # The key works against the OpenAI-compatible API ...
    models = httpx.get(f"{ui_server.root_url}/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert models.status_code == 200, models.text
    page.goto(f"{ui_server.root_url}/admin/keys")
    row = page.locator(f"tr[data-key-id='{key_id}']")
    assert "never" not in row.locator("td").nth(6).inner_text()  # last used is now set

    # ... until it is revoked in the UI (after a confirmation page).
    row.get_by_role("link", name="Revoke…").click()
    page.wait_for_url(re.compile(rf".*/admin/keys/{key_id}/revoke$"))
    assert name in page.locator("dl.facts").inner_text()
    assert_accessible(page)
    page.get_by_role("button", name="Revoke key").click()
    page.wait_for_url(re.compile(r".*/admin/keys\?done=revoked$"))
    assert "revoked" in page.locator(f"tr[data-key-id='{key_id}'] .badge").inner_text()
    refused = httpx.get(f"{ui_server.root_url}/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert refused.status_code == 401

    # The audit viewer: the chain verifies and shows the key's creation and revocation.
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Audit log").click()
    page.wait_for_url(re.compile(r".*/admin/audit$"))
    assert re.search(r"Chain verified — [\d,]+ records", page.locator(".chain-status").inner_text())
    assert page.locator(f"table.audit td code:text-is('key:{key_id}')").count() == 2
    page.locator("form.filters").get_by_label("Action").select_option("key.created")
    page.locator("form.filters").get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*/admin/audit\?action=key.created.*"))
    actions = page.locator("table.audit tbody tr td:nth-child(4)").all_inner_texts()
    assert actions and set(actions) == {"key.created"}
    assert page.locator(f"table.audit td code:text-is('key:{key_id}')").count() == 1
    page.goto(f"{ui_server.root_url}/admin/audit")
    screenshot(page, "admin-audit")
    assert_accessible(page)

    # Exports go through the audited export: the download is itself recorded.
    csv = page.request.get(f"{ui_server.root_url}/admin/audit/export?format=csv")
    assert csv.status == 200 and csv.text().startswith("id,workspace,seq,")
    assert "attachment" in csv.headers["content-disposition"]
    jsonl = page.request.get(f"{ui_server.root_url}/admin/audit/export?format=jsonl")
    assert f'"resource": "key:{key_id}"' in jsonl.text()
    page.goto(f"{ui_server.root_url}/admin/audit?action=data.exported")
    assert page.locator("table.audit td code:text-is('audit-log')").count() >= 2


def test_settings_persist(ui_server, page):
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/admin/settings")
    days = 30 + uuid.uuid4().int % 300
    page.get_by_role("spinbutton", name="Conversations").fill(str(days))
    page.get_by_role("spinbutton", name="Uploaded documents").fill("")
    page.get_by_label("Before the model (prompts)").select_option("flag")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url(re.compile(r".*/admin/settings\?done=saved$"))
    assert "Settings saved" in page.locator(".alert.ok").inner_text()
    assert page.get_by_role("spinbutton", name="Conversations").input_value() == str(days)
    assert page.get_by_label("Before the model (prompts)").input_value() == "flag"
    with owner_api(ui_server) as api:
        policy = api.get("/v1/admin/workspace").json()["policy"]
    assert policy["retention_conversations_days"] == days
    assert policy["retention_files_days"] is None and policy["pii_before_model"] == "flag"

    # An invalid value is refused by the policy's validation and shown on the page; nothing is saved.
    page.get_by_role("spinbutton", name="Conversations").evaluate("input => input.removeAttribute('min')")
    page.get_by_role("spinbutton", name="Conversations").fill("0")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_load_state()
    assert "Invalid workspace settings" in page.locator(".alert.error").inner_text()
    with owner_api(ui_server) as api:
        assert api.get("/v1/admin/workspace").json()["policy"]["retention_conversations_days"] == days
        api.patch("/v1/admin/workspace", json={"pii_before_model": "off"})  # leave the shared server as it was
    page.goto(f"{ui_server.root_url}/admin/settings")
    screenshot(page, "admin-settings")
    assert_accessible(page)


def test_member_is_refused_everywhere(ui_server, page):
    email = new_user(ui_server, "member")
    sign_in(page, ui_server.root_url, email, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Admin").count() == 0
    assert nav.get_by_role("link", name="Audit").count() == 0
    for path in ("/admin", "/admin/users", "/admin/keys", "/admin/settings", "/admin/audit",
                 "/admin/audit/export?format=csv", "/admin/compliance-report"):
        response = page.goto(f"{ui_server.root_url}{path}")
        assert response.status == 403, path
    assert page.locator("h1").inner_text() == "Not allowed"

    # Forcing the forms with the member's own (valid) CSRF token changes nothing.
    token = csrf_token(page)
    name = unique("smuggled")
    origin = {"Origin": ui_server.root_url}
    forced = page.request.post(f"{ui_server.root_url}/admin/keys", headers=origin,
                               form={"csrf_token": token, "user": email, "name": name, "scopes": "admin"})
    assert forced.status == 403
    forced = page.request.post(f"{ui_server.root_url}/admin/users", headers=origin,
                               form={"csrf_token": token, "email": f"{unique('x')}@example.jp", "role": "owner",
                                     "password": PASSWORD})
    assert forced.status == 403
    forced = page.request.post(f"{ui_server.root_url}/admin/settings", headers=origin,
                               form={"csrf_token": token, "retention_conversations_days": "1"})
    assert forced.status == 403
    with owner_api(ui_server) as api:
        assert name not in {key["name"] for key in api.get("/v1/admin/keys").json()["data"]}
        assert api.get("/v1/admin/workspace").json()["policy"]["retention_conversations_days"] != 1


def test_auditor_sees_only_the_audit_log(ui_server, page):
    email = new_user(ui_server, "auditor")
    sign_in(page, ui_server.root_url, email, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Admin").count() == 0
    nav.get_by_role("link", name="Audit").click()
    page.wait_for_url(re.compile(r".*/admin/audit$"))
    assert "Chain verified" in page.locator(".chain-status").inner_text()
    assert page.locator("table.audit tbody tr").count() > 0
    sub = page.get_by_role("navigation", name="Administration")
    assert sub.get_by_role("link").all_inner_texts() == ["Audit log"]
    for path in ("/admin", "/admin/users", "/admin/keys", "/admin/settings"):
        assert page.goto(f"{ui_server.root_url}{path}").status == 403, path
    export = page.request.get(f"{ui_server.root_url}/admin/audit/export?format=jsonl")
    assert export.status == 200
    assert page.request.get(f"{ui_server.root_url}/admin/compliance-report").status == 200


def test_admin_cannot_manage_owners(ui_server, page):
    """The directory's rule (only an owner changes an owner) reaches the page as its own error, status 403."""
    email = new_user(ui_server, "admin")
    sign_in(page, ui_server.root_url, email, PASSWORD)
    page.goto(f"{ui_server.root_url}/admin/users")
    row = page.locator(f"tr[data-email='{OWNER}']")
    row.locator("select[name=role]").select_option("member")
    statuses = []
    page.once("response", lambda response: statuses.append(response.status))
    row.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert statuses == [403]
    assert "Only an owner can change or remove an owner" in page.locator(".alert.error").inner_text()
    with owner_api(ui_server) as api:
        owner = next(u for u in api.get("/v1/admin/users").json()["data"] if u["email"] == OWNER)
    assert owner["role"] == "owner"


def test_admin_pages_at_phone_width(ui_server, chromium):
    phone = new_page(chromium, PHONE)
    try:
        sign_in_owner(phone, ui_server)
        for path in ("/admin", "/admin/users", "/admin/keys", "/admin/settings", "/admin/audit"):
            phone.goto(f"{ui_server.root_url}{path}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
            screenshot(phone, "admin-phone-" + (path.split("/")[2] if path.count("/") > 1 else "overview"))
    finally:
        phone.context.close()
