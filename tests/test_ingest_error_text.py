"""A file that cannot be ingested keeps its error as a translatable message: `ingest_job_files.error` holds the
English the API and CLI show, `error_message` the template and values the web UI translates (revision 0006).

Every file here fails before embedding, so no model is loaded."""

from __future__ import annotations

import asyncio
import re

from alembic import command
from knowledge_support import ADMIN, ingest, sql

from shuken.config import Settings
from shuken.localisable import Message
from shuken.services import Services
from shuken.web.i18n import Localiser, translations

BINARY = "報告書.txt"
UNSUPPORTED = "budget.xyz"
EXPECTED = {  # file name → (template, English stored in ingest_job_files.error)
    BINARY: ("%(name)s: contains NUL bytes, so it is binary, not text",
             f"{BINARY}: contains NUL bytes, so it is binary, not text"),
    UNSUPPORTED: ("%(name)s: unsupported file type %(suffix)s; supported: %(supported)s",
                  f"{UNSUPPORTED}: unsupported file type .xyz; supported: "),
}


def failing_files(tmp_path) -> list[tuple[str, object]]:
    """One file kept under another name, as an upload is (content-addressed), and one local file as `shuken ingest`
    submits it: both errors must name the document, never the stored copy."""
    binary = tmp_path / ("9f" * 32)
    binary.write_bytes(b"PK\x03\x04" + b"\x00\x01\x02" * 50)  # valid UTF-8, but NUL bytes
    unsupported = tmp_path / UNSUPPORTED
    unsupported.write_text("quarterly numbers that no parser claims\n", encoding="utf-8")
    return [(BINARY, binary), (UNSUPPORTED, unsupported)]


def ingest_failing(services, tmp_path) -> str:
    async def work():
        try:
            services.knowledge.create_collection(ADMIN, "reports")
            return (await ingest(services, "reports", failing_files(tmp_path)))["id"]
        finally:
            await services.host.close()
    return asyncio.run(work())


def test_a_parse_error_is_stored_in_english_and_read_back_as_a_translatable_message(isolated_home, tmp_path):
    first = Services.open(Settings(home=isolated_home))
    try:
        job_id = ingest_failing(first, tmp_path)
    finally:
        first.close()
    reopened = Services.open(Settings(home=isolated_home))  # read back from the database alone
    try:
        view = reopened.knowledge.job(ADMIN, job_id)
        stored = dict(sql(reopened, "SELECT name, error FROM ingest_job_files"))
    finally:
        reopened.close()
    assert view["status"] == "done" and view["totals"]["errors"] == 2
    errors = {f["name"]: f["error"] for f in view["files"]}
    assert set(errors) == set(EXPECTED)
    for name, (template, english) in EXPECTED.items():
        error = errors[name]
        assert isinstance(error, Message) and error.template == template
        assert error.startswith(english) and str(error) == stored[name]  # the API and CLI text is unchanged
        assert Localiser("en").text(error) == stored[name]
        japanese = Localiser("ja").text(error)
        assert name in japanese and "9f9f" not in japanese + str(error)  # the document's name, not its stored copy
        assert translations("ja").gettext(template) != template, "run `make i18n` and translate it"
        assert japanese != stored[name] and re.search(r"[\u3040-\u30ff]", japanese)
    assert ".docx" in errors[UNSUPPORTED].values["supported"]


def test_migration_0006_downgrades_and_upgrades_with_the_english_kept(services, tmp_path):
    job_id = ingest_failing(services, tmp_path)
    messages = sql(services, "SELECT error_message FROM ingest_job_files WHERE error_message IS NOT NULL")
    assert len(messages) == 2
    config = services.db.alembic_config()
    command.downgrade(config, "0005")
    assert "error_message" not in [row[1] for row in sql(services, "PRAGMA table_info(ingest_job_files)")]
    english = dict(sql(services, "SELECT name, error FROM ingest_job_files"))
    assert english[BINARY] == EXPECTED[BINARY][1]
    command.upgrade(config, "head")
    assert services.db.current_revision() == services.db.head_revision()
    assert sql(services, "SELECT error_message FROM ingest_job_files WHERE error_message IS NOT NULL") == []
    # An error recorded before 0006 has no template: the job view gives its English as it is.
    errors = {f["name"]: f["error"] for f in services.knowledge.job(ADMIN, job_id)["files"]}
    assert errors == english and not any(isinstance(error, Message) for error in errors.values())
