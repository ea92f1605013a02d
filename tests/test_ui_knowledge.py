"""Browser tests of the Knowledge pages against a real server: collections, uploads with live job progress,
document deletion, original files, and group-restricted collections refused to outsiders."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from urllib.parse import quote

import httpx
import pytest
from browser_support import PASSWORD, PHONE, assert_accessible, new_user, owner_api, screenshot, sign_in, sign_in_owner
from fixtures.documents import SAMPLES, Heading, Para, make_docx, make_pdf, make_text
from knowledge_support import wait_for_job

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def row(page, name: str):
    return page.locator("#document-table tbody tr", has=page.locator(f"td.doc-name a:text-is('{name}')"))


def test_owner_creates_uploads_opens_and_deletes(ui_server, page, tmp_path):
    pdf = make_pdf(tmp_path / "規程-ja.pdf", [SAMPLES["ja"][:2], SAMPLES["ja"][2:]])
    docx = make_docx(tmp_path / "policy-en.docx", [Heading("Office policies"), *map(Para, SAMPLES["en"])])
    exe = tmp_path / "setup.exe"
    exe.write_bytes(b"MZ\x90\x00" + os.urandom(2048))
    not_zip = tmp_path / "archive.zip"
    not_zip.write_bytes(b"this is not a zip archive")
    name = f"handbook-{uuid.uuid4().hex[:8]}"

    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/knowledge")
    form = page.locator("form#new-collection")
    # The server's own validation, shown on the page (there is no client-side pattern to hide it).
    form.get_by_label("Name").fill("not a valid name!")
    form.get_by_role("button", name="Create collection").click()
    assert "1–100 letters" in page.locator("#create-error").inner_text()
    assert_accessible(page)
    assert form.get_by_label("Name").input_value() == "not a valid name!"  # what was typed stays

    form.get_by_label("Name").fill(name)
    form.get_by_label("Description").fill("社内規程と方針 / Office rules")
    form.get_by_role("button", name="Create collection").click()
    page.wait_for_url(f"**/knowledge/{name}")
    assert page.locator("h1").inner_text() == name
    assert "No documents yet" in page.locator("#documents").inner_text()

    # Two files at once through the (labelled) file input; the page follows the job until it finishes.
    page.get_by_label("Choose files to upload").set_input_files([str(pdf), str(docx)])
    batch = page.locator(".upload-batch").first
    batch.locator("[data-status=indexing], [data-status=queued], [data-status=indexed]").first.wait_for()
    page.wait_for_selector(".upload-batch[data-finished=true]", timeout=120_000)
    statuses = batch.locator(".upload-item")
    assert statuses.count() == 2
    for item in statuses.all():
        assert item.get_attribute("data-status") == "indexed", item.inner_text()
        assert re.search(r"\d+ chunks?", item.inner_text())
    assert page.locator("#upload-status").get_attribute("aria-live") == "polite"

    # The document list was refreshed in place with both documents, their languages and chunk counts.
    for file_name, language in ((pdf.name, "ja"), (docx.name, "en")):
        document = row(page, file_name)
        document.wait_for()
        assert document.locator("td[data-language]").get_attribute("data-language") == language
        assert int(document.locator("td[data-chunks]").get_attribute("data-chunks")) > 0
    assert "Japanese" in row(page, pdf.name).inner_text() and "English" in row(page, docx.name).inner_text()
    assert "Documents: 2" in page.locator("#collection-summary").inner_text()
    screenshot(page, "knowledge-collection")

    # An unsupported type is accepted as bytes but fails in ingestion: its reason is shown next to it.
    page.get_by_label("Choose files to upload").set_input_files(str(exe))
    page.wait_for_function("document.querySelectorAll('.upload-batch').length === 2")
    page.wait_for_selector("#upload-status > .upload-batch:first-child[data-finished=true]", timeout=60_000)
    failed = page.locator(".upload-batch").first.locator(".upload-item")
    assert failed.get_attribute("data-status") == "error"
    assert "unsupported file type .exe" in failed.locator(".file-error").inner_text()
    # Dropping files on the drop zone uploads them the same way.
    page.locator("#dropzone").evaluate("""(zone, text) => {
        const data = new DataTransfer();
        data.items.add(new File([text], "dropped-notes.txt", {type: "text/plain"}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""", "\n\n".join(SAMPLES["fr"]))
    page.wait_for_function("document.querySelectorAll('.upload-batch').length === 3")
    page.wait_for_selector("#upload-status > .upload-batch:first-child[data-finished=true]", timeout=60_000)
    dropped = page.locator(".upload-batch").first.locator(".upload-item")
    assert dropped.get_attribute("data-status") == "indexed", dropped.inner_text()
    row(page, "dropped-notes.txt").wait_for()
    assert row(page, "dropped-notes.txt").locator("td[data-language]").get_attribute("data-language") == "fr"
    # A refused request (not a .zip at all) shows the API's own error message.
    page.get_by_label("Choose files to upload").set_input_files(str(not_zip))
    refusal = page.locator(".upload-batch").first.locator(".batch-summary.alert.error")
    refusal.wait_for()
    assert "archive.zip is not a readable .zip archive" in refusal.inner_text()
    assert page.locator(".upload-batch").first.locator(".upload-item").get_attribute("data-status") == "refused"
    screenshot(page, "knowledge-upload-errors")
    assert_accessible(page)

    # The original file: same bytes, as a download under its own name, never sniffed.
    for source in (pdf, docx):
        href = row(page, source.name).locator("td.doc-name a").get_attribute("href")
        assert re.fullmatch(r"/ui/files/\d+", href)
        response = page.request.get(f"{ui_server.root_url}{href}")
        assert response.status == 200
        assert hashlib.sha256(response.body()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;") and quote(source.name) in disposition, disposition
        assert response.headers["x-content-type-options"] == "nosniff"
    # ... and it is the viewer's session that opens it: without one, no file.
    assert httpx.get(f"{ui_server.root_url}{href}").status_code in (401, 303)

    # Delete one document (after the confirmation).
    page.on("dialog", lambda dialog: dialog.accept())
    row(page, docx.name).get_by_role("button", name=re.compile("Delete")).click()
    page.wait_for_url(re.compile(r".*notice=document_deleted"))
    assert "The document was deleted" in page.locator("main").inner_text()
    assert row(page, docx.name).count() == 0 and row(page, pdf.name).count() == 1
    assert row(page, "dropped-notes.txt").count() == 1

    # The list shows the collection with its count.
    page.goto(f"{ui_server.root_url}/knowledge")
    listed = page.locator(f"#collections tr[data-collection='{name}']")
    assert listed.locator("td.num").first.inner_text() == "2"
    screenshot(page, "knowledge-list")
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    screenshot(page, "knowledge-list-phone")
    page.goto(f"{ui_server.root_url}/knowledge/{name}")
    screenshot(page, "knowledge-collection-phone")
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Deleting the collection goes back to the list, without it.
    page.get_by_role("button", name="Delete collection").click()
    page.wait_for_url(re.compile(r".*/knowledge\?notice=collection_deleted"))
    assert page.locator(f"#collections tr[data-collection='{name}']").count() == 0


def test_restricted_collection_is_refused_to_other_groups(ui_server, page, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    group_a, group_b = f"team-a-{suffix}", f"team-b-{suffix}"
    secret, shared = f"board-{suffix}", f"open-{suffix}"
    api = owner_api(ui_server)
    for collection, groups in ((secret, [group_b]), (shared, [])):
        created = api.post("/v1/collections", json={"name": collection, "groups": groups})
        assert created.status_code == 201, created.text
    notes = make_text(tmp_path / "minutes.txt", SAMPLES["en"][:2])
    accepted = api.post(f"/v1/collections/{secret}/documents",
                        files=[("files", (notes.name, notes.read_bytes(), "text/plain"))])
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(api, accepted.json()["id"])
    document_id = job["files"][0]["document_id"]
    assert job["files"][0]["status"] == "indexed", job
    email = new_user(ui_server, groups=(group_a,))

    sign_in(page, ui_server.root_url, email, PASSWORD)
    page.goto(f"{ui_server.root_url}/knowledge")
    names = page.locator("#collections tr[data-collection]").evaluate_all("rows => rows.map(r => r.dataset.collection)")
    assert shared in names and secret not in names
    # Members may write: they get the form and the upload area, but not another group's collection.
    assert page.locator("form#new-collection").count() == 1

    forced = page.goto(f"{ui_server.root_url}/knowledge/{secret}")
    assert forced.status == 403  # the collection exists, in this workspace, restricted to a group they are not in
    assert page.locator("h1").inner_text() == "Not allowed"
    screenshot(page, "knowledge-forbidden")
    assert page.goto(f"{ui_server.root_url}/knowledge/no-such-{suffix}").status == 404

    assert page.request.get(f"{ui_server.root_url}/ui/files/{document_id}").status == 403
    assert page.request.get(f"{ui_server.root_url}/ui/files/999999999").status == 404
    # The job of that collection and uploads into it are refused the same way.
    assert page.request.get(f"{ui_server.root_url}/ui/api/jobs/{job['id']}").status == 404
    page.goto(f"{ui_server.root_url}/knowledge/{shared}")
    token = page.locator("#uploader").get_attribute("data-csrf")
    refused = page.request.post(f"{ui_server.root_url}/ui/api/collections/{secret}/documents",
                                headers={"X-CSRF-Token": token, "Origin": ui_server.root_url},
                                multipart={"files": {"name": "x.txt", "mimeType": "text/plain", "buffer": b"hello"}})
    assert refused.status == 403 and refused.json()["error"]["code"] == "collection_forbidden"
    # Without the CSRF token, the upload endpoint refuses before looking at anything.
    unguarded = page.request.post(f"{ui_server.root_url}/ui/api/collections/{shared}/documents",
                                  headers={"Origin": ui_server.root_url},
                                  multipart={"files": {"name": "x.txt", "mimeType": "text/plain", "buffer": b"hi"}})
    assert unguarded.status == 403 and unguarded.json()["error"]["code"] == "csrf_failed"
