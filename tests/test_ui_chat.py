"""The web chat in a real browser (Debian chromium via Playwright) against a real `shuken serve`: sign-in and
sessions, streamed Markdown answers, stop/regenerate/copy, grounded answers in Japanese with working
citations, sanitising of hostile Markdown, consent that changes what is captured, and the server's refusals."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest

from browser_support import OWNER, PASSWORD, csrf_token, new_user, owner_api, screenshot, sign_in, sign_in_owner
from fixtures.documents import SAMPLES, make_pdf
from knowledge_support import read_only, wait_for_job

from shuken.governance.directory import MAX_FAILED_LOGINS

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def ingested_collection(server, tmp_path, groups: tuple[str, ...] = ()) -> tuple[str, bytes]:
    """A collection holding a two-page Japanese PDF, indexed; its name and the PDF's bytes."""
    name = f"rules-{uuid.uuid4().hex[:6]}"
    pdf = make_pdf(tmp_path / "rules-ja.pdf", [SAMPLES["ja"][:2], SAMPLES["ja"][2:]]).read_bytes()
    with owner_api(server) as api:
        assert api.post("/v1/collections", json={"name": name, "groups": list(groups)}).status_code == 201
        job = api.post(f"/v1/collections/{name}/documents",
                       files=[("files", ("rules-ja.pdf", pdf, "application/pdf"))]).json()
        assert wait_for_job(api, job["id"])["files"][0]["status"] == "indexed"
    return name, pdf


def database_rows(server, statement: str, *params) -> list[tuple]:
    with read_only(server.home / "shuken.db") as connection:
        return connection.execute(statement, params).fetchall()


def ask(page, question: str) -> None:
    """Send a question and wait until its answer has begun (an older, finished answer must not be mistaken
    for it)."""
    answers = page.locator("li.message.assistant").count()
    page.locator("#prompt").fill(question)
    page.locator("#prompt").press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('li.message.assistant').length > {answers}")


def wait_for_answer(page, timeout: float = 90_000):
    """The newest assistant message once its stream has ended."""
    page.wait_for_function("() => !document.querySelector('li.message.assistant.streaming')", timeout=timeout)
    return page.locator("li.message.assistant").last


def test_sign_in_sets_a_secure_session_and_sign_out_ends_it(page, ui_server):
    page.goto(f"{ui_server.root_url}/chat")
    assert "/signin?next=%2Fchat" in page.url  # pages need a session
    page.locator("input[name=email]").fill(OWNER)
    page.locator("input[name=password]").fill("not the password at all")
    page.locator("form[action='/signin'] button[type=submit]").click()
    page.locator(".alert.error").wait_for()  # visible, on the page the refused form returns
    sign_in_owner(page, ui_server)
    assert page.url.endswith("/chat")
    cookie = next(c for c in page.context.cookies() if c["name"] == "shuken_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("shuken_session") == -1  # invisible to scripts
    screenshot(page, "chat-empty")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/signin"))
    # The old cookie no longer names a session on the server.
    response = httpx.get(f"{ui_server.root_url}/chat", cookies={"shuken_session": cookie["value"]})
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_repeated_failures_lock_the_account_and_every_attempt_is_audited(page, ui_server):
    email = new_user(ui_server)
    for _ in range(MAX_FAILED_LOGINS):
        page.goto(f"{ui_server.root_url}/signin")
        page.locator("input[name=email]").fill(email)
        page.locator("input[name=password]").fill("wrong password, wrong")
        page.locator("form[action='/signin'] button[type=submit]").click()
    page.goto(f"{ui_server.root_url}/signin")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)  # the right one, too late
    page.locator("form[action='/signin'] button[type=submit]").click()
    assert "shuken_session" not in {c["name"] for c in page.context.cookies()}
    # The page says the same for a locked account as for a wrong password: it does not reveal who exists.
    assert "unknown user or wrong password" in page.locator(".alert.error").inner_text()
    user_id = database_rows(ui_server, "SELECT id FROM users WHERE email = ?", email)[0][0]
    with owner_api(ui_server) as api:
        records = api.get("/v1/admin/audit", params={"action": "login"}).json()["data"]
    mine = [r for r in records if r["resource"] == f"user:{user_id}"]
    assert [r["outcome"] for r in mine].count("failure") == MAX_FAILED_LOGINS + 1


def test_sign_in_refuses_a_form_without_its_token(ui_server):
    response = httpx.post(f"{ui_server.root_url}/signin",
                          data={"email": OWNER, "password": ui_server.admin_password})
    assert response.status_code == 403
    assert "shuken_session" not in response.cookies


def test_chat_streams_markdown_and_keeps_the_conversation(page, ui_server):
    sign_in_owner(page, ui_server)
    ask(page, "Write three short tips for clear e-mails as a numbered Markdown list.")
    # Streaming: the answer grows on the page before it is finished.
    page.wait_for_function("() => { const m = document.querySelector('li.message.assistant.streaming .body');"
                           " return m && m.textContent.length > 0; }", timeout=60_000)
    answer = wait_for_answer(page)
    assert re.search(r"/chat/\d+$", page.url)
    assert answer.locator(".body").inner_text().strip()
    assert answer.locator(".body ol li, .body ul li, .body p").count() >= 1  # rendered Markdown, not raw text
    title = page.locator("#conversation-list li.current a").inner_text()
    assert title.startswith("Write three short tips")

    # Copy puts the raw Markdown on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    answer.get_by_role("button", name="Copy").click()
    stored = database_rows(ui_server, "SELECT content FROM conversation_messages WHERE role = 'assistant' "
                                      "ORDER BY id DESC LIMIT 1")[0][0]
    assert page.evaluate("navigator.clipboard.readText()") == stored

    # Regenerate replaces the last answer: still exactly one answer stored for the one question.
    conversation = int(page.url.rsplit("/", 1)[1])
    answer.get_by_role("button", name="Regenerate").click()
    page.wait_for_selector("li.message.assistant.streaming", timeout=10_000)
    wait_for_answer(page)
    stored = database_rows(ui_server, "SELECT role, content FROM conversation_messages WHERE "
                                      "conversation_id = ? ORDER BY id", conversation)
    assert [role for role, _ in stored] == ["user", "assistant"]
    assert page.locator("button.regenerate").count() == 1  # only the newest answer offers it
    # A regeneration that cannot start (unknown model) keeps the answer there was.
    refused = page.request.post(f"{ui_server.root_url}/ui/api/conversations/{conversation}/turns",
                                data=json.dumps({"content": None, "model": "no-such-model"}),
                                headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    assert refused.status == 404, refused.text()
    assert database_rows(ui_server, "SELECT role, content FROM conversation_messages WHERE "
                                    "conversation_id = ? ORDER BY id", conversation) == stored
    screenshot(page, "chat-answer")


def test_stop_keeps_the_partial_answer_marked_stopped(page, ui_server):
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    ask(page, "Tell me a very long story about a lighthouse keeper, in many paragraphs.")
    page.wait_for_function("() => { const m = document.querySelector('li.message.assistant.streaming .body');"
                           " return m && m.textContent.length > 20; }", timeout=60_000)
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("li.message.assistant.stopped", timeout=10_000)
    conversation = int(page.url.rsplit("/", 1)[1])
    deadline = time.monotonic() + 10
    while not (rows := database_rows(ui_server, "SELECT content, stopped FROM conversation_messages WHERE "
                                                "conversation_id = ? AND role = 'assistant'", conversation)):
        assert time.monotonic() < deadline, "the stopped answer was not stored"
        time.sleep(0.1)
    content, stopped = rows[0]
    assert stopped == 1 and len(content) > 20
    page.reload()  # stored: the stopped answer is there after a reload, marked
    page.wait_for_selector("li.message.assistant.stopped")


def test_a_grounded_answer_in_japanese_cites_a_passage_that_opens_with_its_file(page, ui_server, tmp_path):
    collection, pdf = ingested_collection(ui_server, tmp_path)
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    page.get_by_label(collection).check()
    ask(page, "経費の精算はいつまでに申請しますか？")
    answer = wait_for_answer(page)
    sources = answer.locator("button.source")
    assert sources.count() >= 1
    assert "rules-ja.pdf" in sources.first.inner_text()
    markers = answer.locator("a.cite")
    (markers.first if markers.count() else sources.first).click()
    dialog = page.locator("#citation-dialog")
    assert dialog.is_visible()
    assert "rules-ja.pdf" in dialog.locator("#citation-title").inner_text()
    assert re.search(r"p\. [12]", dialog.locator("#citation-where").inner_text())
    quote = dialog.locator("#citation-quote").inner_text()
    assert "経費" in quote or "研修" in quote or "領収書" in quote
    screenshot(page, "chat-citation")
    href = dialog.locator("#citation-file").get_attribute("href")
    original = page.request.get(f"{ui_server.root_url}{href}")
    assert original.status == 200
    assert hashlib.sha256(original.body()).hexdigest() == hashlib.sha256(pdf).hexdigest()
    # The conversation remembers the chosen collection.
    page.reload()
    assert page.get_by_label(collection).is_checked()


def test_hostile_markdown_is_inert_and_stored_markers_open_their_passage(page, ui_server):
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    created = page.request.post(f"{ui_server.root_url}/ui/api/conversations", data=json.dumps({"title": "hostile"}),
                                headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    assert created.status == 201
    conversation = created.json()["id"]
    hostile = ("Look [1] <img src=x onerror=\"window.pwned=1\"> <script>window.pwned=2</script> "
               "[click](javascript:window.pwned=3) <a href=\"#\" onclick=\"window.pwned=4\">x</a>\n\n"
               "مرحبا بكم في المكتب [1]")
    citation = {"index": 1, "collection": "c", "document_id": 0, "document_name": "規程.pdf", "chunk_id": 0,
                "location": {"page": 3, "page_end": None, "start": 0, "end": 5}, "quote": "<b>引用</b> text",
                "cited": True}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(ui_server.home / "shuken.db", timeout=10) as connection:
        connection.execute("INSERT INTO conversation_messages (conversation_id, role, content, model, created_at, "
                           "citations, stopped) VALUES (?, 'assistant', ?, 'm', ?, ?, 0)",
                           (conversation, hostile, now, json.dumps([citation])))
    page.goto(f"{ui_server.root_url}/chat/{conversation}")
    body = page.locator("li.message.assistant .body")
    assert body.locator("img, script, [onclick], a[href^='javascript']").count() == 0
    assert page.evaluate("window.pwned") is None
    assert "<script>" in body.inner_text()  # shown as text, not run
    assert body.evaluate("e => getComputedStyle(e).direction") in ("ltr", "rtl")
    arabic = body.locator("p").last
    assert arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"  # dir=auto on the answer
    body.locator("a.cite").first.click()
    assert page.locator("#citation-title").inner_text() == "[1] 規程.pdf"
    assert page.locator("#citation-quote").inner_text() == "<b>引用</b> text"
    page.keyboard.press("Escape")


def test_conversations_are_renamed_deleted_and_private(page, ui_server, chromium):
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    ask(page, "Say hello.")
    wait_for_answer(page)
    conversation = int(page.url.rsplit("/", 1)[1])
    item = page.locator(f"#conversation-list li[data-id='{conversation}']")
    page.once("dialog", lambda dialog: dialog.accept("Greetings 挨拶"))
    item.get_by_role("button", name="Rename").click()
    page.wait_for_function(f"() => document.querySelector(\"#conversation-list li[data-id='{conversation}'] a\")"
                           ".textContent === 'Greetings 挨拶'")
    assert database_rows(ui_server, "SELECT title FROM conversations WHERE id = ?", conversation) == \
        [("Greetings 挨拶",)]

    # Another user of the same workspace can neither open nor change it.
    other = chromium.new_context()
    try:
        intruder = other.new_page()
        sign_in(intruder, ui_server.root_url, new_user(ui_server), PASSWORD)
        assert intruder.goto(f"{ui_server.root_url}/chat/{conversation}").status == 404
        refused = intruder.request.delete(f"{ui_server.root_url}/ui/api/conversations/{conversation}",
                                          headers={"X-CSRF-Token": csrf_token(intruder)})
        assert refused.status == 404
    finally:
        other.close()

    page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r".*/chat$"))
    assert database_rows(ui_server, "SELECT count(*) FROM conversations WHERE id = ?", conversation) == [(0,)]
    assert database_rows(ui_server, "SELECT count(*) FROM conversation_messages WHERE conversation_id = ?",
                         conversation) == [(0,)]


def test_audited_downloads_refuse_requests_from_other_sites(page, ui_server):
    sign_in_owner(page, ui_server)
    for path in ("/admin/audit/export?format=csv", "/admin/compliance-report"):
        cross = page.request.get(f"{ui_server.root_url}{path}", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status == 403, path
        assert page.request.get(f"{ui_server.root_url}{path}", headers={"Sec-Fetch-Site": "same-origin"}).ok


def test_state_changes_need_the_session_token_and_our_origin(page, ui_server):
    sign_in_owner(page, ui_server)
    url = f"{ui_server.root_url}/ui/api/conversations"
    body = json.dumps({"title": "x"})
    no_token = page.request.post(url, data=body, headers={"Content-Type": "application/json"})
    assert no_token.status == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    foreign = page.request.post(url, data=body, headers={"Content-Type": "application/json",
                                                         "X-CSRF-Token": csrf_token(page),
                                                         "Origin": "http://evil.example"})
    assert foreign.status == 403
    ok = page.request.post(url, data=body, headers={"Content-Type": "application/json",
                                                    "X-CSRF-Token": csrf_token(page)})
    assert ok.status == 201


def test_consent_switch_decides_what_is_captured(page, ui_server):
    with owner_api(ui_server) as api:
        assert api.patch("/v1/admin/workspace", json={"training_capture": "opt-in"}).status_code == 200
    try:
        email, witness = new_user(ui_server), new_user(ui_server)
        user_id, witness_id = (database_rows(ui_server, "SELECT id FROM users WHERE email = ?", who)[0][0]
                               for who in (email, witness))
        with owner_api(ui_server) as api:
            created = api.post("/v1/admin/keys", json={"user": witness, "name": "witness"})
        assert created.status_code == 201, created.text
        witness_key = created.json()["secret"]
        granted = httpx.post(f"{ui_server.base_url}/consent", json={"granted": True}, timeout=30,
                             headers={"Authorization": f"Bearer {witness_key}"})
        assert granted.status_code == 200, granted.text

        def questions(who: int) -> list[str]:
            """The question of each of the user's training records (its last user message), oldest first."""
            rows = database_rows(ui_server, "SELECT messages FROM training_records WHERE user_id = ? ORDER BY id",
                                 who)
            return [[m["content"] for m in json.loads(messages) if m["role"] == "user"][-1] for (messages,) in rows]

        def barrier() -> None:
            """Capture decides events one at a time, in order: once a later turn of the witness (who consents)
            is captured, every earlier turn of the user has been decided too."""
            question = f"Say {uuid.uuid4().hex[:6]}."
            ui_server.client(api_key=witness_key).chat.completions.create(
                model="smollm2-135m-instruct", max_tokens=4, messages=[{"role": "user", "content": question}])
            deadline = time.monotonic() + 60
            while question not in questions(witness_id):
                assert time.monotonic() < deadline, "the witness's turn was never captured"
                time.sleep(0.2)

        def share(allowed: bool) -> None:
            label = "Allow my conversations to improve the model" if allowed else "Stop sharing my conversations"
            page.get_by_role("button", name=label).click()
            badge = "Sharing on" if allowed else "Sharing off"
            page.wait_for_function(f"() => document.querySelector('#consent .badge').textContent === '{badge}'")

        sign_in(page, ui_server.root_url, email, PASSWORD)
        assert page.locator("#consent .badge").inner_text() == "Sharing off"
        ask(page, "Say hello.")
        wait_for_answer(page)
        barrier()
        assert questions(user_id) == []

        share(True)
        screenshot(page, "chat-consent-on")
        ask(page, "Say goodbye.")
        wait_for_answer(page)
        barrier()
        assert questions(user_id) == ["Say goodbye."]

        share(False)
        ask(page, "Say thanks.")
        wait_for_answer(page)
        barrier()
        assert questions(user_id) == ["Say goodbye."]
    finally:
        with owner_api(ui_server) as api:
            api.patch("/v1/admin/workspace", json={"training_capture": "off"})


def test_a_member_cannot_ground_answers_in_another_groups_collection(page, ui_server, tmp_path):
    secret, _pdf = ingested_collection(ui_server, tmp_path, groups=("legal",))
    sign_in(page, ui_server.root_url, new_user(ui_server, groups=("sales",)), PASSWORD)
    page.goto(f"{ui_server.root_url}/chat")
    assert page.locator(f"input[name=collections][value='{secret}']").count() == 0
    created = page.request.post(f"{ui_server.root_url}/ui/api/conversations", data=json.dumps({}),
                                headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    forced = page.request.post(
        f"{ui_server.root_url}/ui/api/conversations/{created.json()['id']}/turns",
        data=json.dumps({"content": "経費の精算は？", "model": "smollm2-135m-instruct", "collections": [secret]}),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    assert forced.status in (403, 404), forced.text()
    assert "経費" not in forced.text()


def _store_messages(server, conversation: int, messages: list[tuple[str, str]]) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(server.home / "shuken.db", timeout=10) as connection:
        connection.executemany("INSERT INTO conversation_messages (conversation_id, role, content, model, created_at, "
                               "citations, stopped) VALUES (?, ?, ?, 'smollm2-135m-instruct', ?, '[]', 0)",
                               [(conversation, role, content, now) for role, content in messages])


def _turn(page, server, conversation: int, question: str) -> dict:
    """Ask through the chat's own endpoint; the `done` event once the answer has streamed."""
    response = page.request.post(
        f"{server.root_url}/ui/api/conversations/{conversation}/turns",
        data=json.dumps({"content": question, "model": "smollm2-135m-instruct"}),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)}, timeout=120_000)
    assert response.status == 200, response.text()
    return json.loads(response.text().strip().splitlines()[-1])


def test_a_conversation_far_longer_than_the_context_is_still_answered(page, ui_server):
    from shuken.chat.context import estimate_tokens, history_budget
    from shuken.config import Settings

    context = Settings.model_fields["context_per_sequence"].default  # the server's, and smollm2 trained on more
    refused = lambda: ui_server.metric("shuken_requests_total", model="smollm2-135m-instruct",  # noqa: E731
                                       endpoint="chat", status="400") or 0
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    created = page.request.post(f"{ui_server.root_url}/ui/api/conversations", data=json.dumps({"title": "long"}),
                                headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    conversation = created.json()["id"]
    # Eighty messages of ~600 tokens each: about 24 times the model's context.
    paragraph = "The lighthouse keeper wrote down the weather, the ships and the state of the lamp. " * 36
    _store_messages(ui_server, conversation, [(role, f"{n}. {paragraph}") for n in range(40)
                                              for role in ("user", "assistant")])
    before = refused()
    done = _turn(page, ui_server, conversation, "Say hello.")
    assert done["error"] is None and done["message"]["content"].strip() and not done["message"]["stopped"]
    assert refused() == before  # the newest messages that fit were sent: the model never refused the prompt

    # The newest answer is in a script the tokenizer spells byte by byte: it fits the estimate, yet takes twice
    # the tokens and overflows the context. The model refuses before answering, and the turn is asked again with
    # the question alone rather than failing now and on every later turn.
    budget = history_budget(context) - estimate_tokens("Say hello again.") - 200
    armenian = "".join(chr(0x0531 + (n * 7) % 38) for n in range(budget))
    assert estimate_tokens(armenian) == budget and 2 * budget > context
    _store_messages(ui_server, conversation, [("user", "Write some Armenian letters."), ("assistant", armenian)])
    done = _turn(page, ui_server, conversation, "Say hello again.")
    assert done["error"] is None and done["message"]["content"].strip()
    assert refused() == before + 1
    stored = database_rows(ui_server, "SELECT role FROM conversation_messages WHERE conversation_id = ? "
                                      "ORDER BY id", conversation)
    assert len(stored) == 2 * 40 + 2 + 2 + 2  # everything is kept; only what is sent to the model is chosen


def test_history_is_the_newest_messages_that_fit_and_starts_with_a_question():
    from shuken.chat.context import MESSAGE_TOKENS, estimate_tokens, fit_history

    assert estimate_tokens("abcd efg") == 2 + 0 and estimate_tokens("12.\n") == 4 and estimate_tokens("経費") == 4
    newest_first = [{"role": "user", "content": "x" * 400}, {"role": "assistant", "content": "y" * 40},
                    {"role": "user", "content": "z" * 40}, {"role": "assistant", "content": "w" * 40}]
    cost = [estimate_tokens(m["content"]) + MESSAGE_TOKENS for m in newest_first]
    assert fit_history(newest_first, sum(cost)) == newest_first[::-1][1:]  # never an answer first
    assert fit_history(newest_first, sum(cost[:3]) - 1) == newest_first[:1]  # trimmed to start with a question
    assert fit_history(newest_first, 1) == newest_first[:1]  # the question always goes: the engine says if too long


def test_the_service_refuses_an_over_long_message_in_the_viewers_language(page, ui_server):
    from shuken.chat.conversations import MAX_MESSAGE_CHARS
    from shuken.localisable import tr
    from shuken.web.i18n import Localiser

    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    created = page.request.post(f"{ui_server.root_url}/ui/api/conversations", data=json.dumps({}),
                                headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    conversation = created.json()["id"]
    refused = page.request.post(
        f"{ui_server.root_url}/ui/api/conversations/{conversation}/turns",
        data=json.dumps({"content": "あ" * (MAX_MESSAGE_CHARS + 1), "model": "smollm2-135m-instruct"}),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page), "Accept-Language": "ja"})
    assert refused.status == 400
    expected = Localiser("ja").text(tr("A message may have at most %(limit)s characters.", limit=MAX_MESSAGE_CHARS))
    assert refused.json()["error"]["message"] == expected != tr("A message may have at most %(limit)s characters.",
                                                                limit=MAX_MESSAGE_CHARS)
    assert database_rows(ui_server, "SELECT count(*) FROM conversation_messages WHERE conversation_id = ?",
                         conversation) == [(0,)]


def test_a_stored_answer_names_the_pages_its_passage_spans(page, ui_server):
    sign_in_owner(page, ui_server)
    page.goto(f"{ui_server.root_url}/chat")
    created = page.request.post(f"{ui_server.root_url}/ui/api/conversations", data=json.dumps({"title": "pages"}),
                                headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_token(page)})
    conversation = created.json()["id"]
    spanning = {"index": 1, "collection": "c", "document_id": 0, "document_name": "規程.pdf", "chunk_id": 0,
                "location": {"page": 4, "page_end": 5, "start": 0, "end": 5}, "quote": "引用", "cited": True}
    one_page = {**spanning, "index": 2, "location": {"page": 6, "page_end": 6, "start": 0, "end": 5}}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(ui_server.home / "shuken.db", timeout=10) as connection:
        connection.execute("INSERT INTO conversation_messages (conversation_id, role, content, model, created_at, "
                           "citations, stopped) VALUES (?, 'assistant', 'See [1] and [2].', 'm', ?, ?, 0)",
                           (conversation, now, json.dumps([spanning, one_page])))
    page.goto(f"{ui_server.root_url}/chat/{conversation}")
    sources = page.locator("li.message.assistant button.source")
    assert sources.all_inner_texts() == ["[1] 規程.pdf · pp. 4–5", "[2] 規程.pdf · p. 6"]  # as chat.js writes them
