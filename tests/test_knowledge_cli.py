"""The knowledge commands of the real `shuken` CLI as subprocesses: ingest (with a glob), collections and
documents listings, search with --json, and ask with its list of sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.documents import SAMPLES, Heading, Para, make_docx, make_pdf, make_text

from shuken.knowledge.grounding import NOT_FOUND

pytestmark = pytest.mark.slow

SHUKEN = [str(Path(sys.executable).with_name("shuken"))]  # the installed console script


def shuken(home: Path, *args: str, command: list[str] = SHUKEN, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHUKEN_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200", "SHUKEN_MIN_RELEVANCE": "0.8"}
    return subprocess.run(command + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """One home, ingested once with a glob that picks the text files of a folder, plus a PDF and a DOCX."""
    root = tmp_path_factory.mktemp("cli-knowledge")
    home, docs = root / "home", root / "docs"
    (docs / "notes").mkdir(parents=True)
    make_text(docs / "notes" / "fr.txt", SAMPLES["fr"])
    make_text(docs / "notes" / "hi.txt", SAMPLES["hi"])
    make_text(docs / "notes" / "skipped.md", ["A markdown file the glob does not match."])
    make_pdf(docs / "rules.pdf", [SAMPLES["ja"][:2], SAMPLES["ja"][2:]])
    make_docx(docs / "policy.docx", [Heading("Office policies"), *map(Para, SAMPLES["en"])])
    result = shuken(home, "ingest", str(docs / "notes" / "*.txt"), str(docs / "rules.pdf"),
                    str(docs / "policy.docx"), "-c", "office", "--create", "--json")
    assert result.returncode == 0, result.stderr
    return home, json.loads(result.stdout)


def test_ingest_expands_globs_and_reports_the_job_as_json(ingested):
    _home, view = ingested
    assert view["object"] == "ingest.job" and view["status"] == "done" and view["collection"] == "office"
    assert sorted((f["name"], f["status"]) for f in view["files"]) == [
        ("fr.txt", "indexed"), ("hi.txt", "indexed"), ("policy.docx", "indexed"), ("rules.pdf", "indexed")]
    assert view["totals"]["files"] == 4 and view["totals"]["pages"] == 2 and view["totals"]["errors"] == 0


def test_collections_and_documents_list_as_json(ingested):
    home, view = ingested
    result = shuken(home, "collections", "list", "--json")
    assert result.returncode == 0, result.stderr
    [office] = json.loads(result.stdout)
    assert office["name"] == "office" and office["documents"] == 4 and office["groups"] == []
    assert office["chunks"] == view["totals"]["chunks"] > 0

    result = shuken(home, "documents", "list", "-c", "office", "--json")
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert {d["name"]: d["language"] for d in documents} == \
           {"fr.txt": "fr", "hi.txt": "hi", "policy.docx": "en", "rules.pdf": "ja"}
    assert {d["name"]: d["pages"] for d in documents}["rules.pdf"] == 2
    assert sum(d["chunks"] for d in documents) == office["chunks"]
    assert all(d["collection"] == "office" and d["object"] == "document" for d in documents)

    missing = shuken(home, "documents", "list", "-c", "nowhere", "--json")
    assert missing.returncode == 1 and "nowhere" in missing.stderr and missing.stdout == ""


def test_search_json_has_the_api_shape_best_first(ingested):
    home, _view = ingested
    result = shuken(home, "search", "経費の精算", "-c", "office", "--json", "--k", "3")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["object"] == "list" and 1 <= len(body["data"]) <= 3
    for hit in body["data"]:
        assert {"document_id", "document_name", "chunk_id", "score", "text", "language", "location"} <= set(hit)
        assert {"page", "start", "end"} <= set(hit["location"])
    assert [h["score"] for h in body["data"]] == sorted((h["score"] for h in body["data"]), reverse=True)
    best = body["data"][0]
    assert best["document_name"] == "rules.pdf" and best["language"] == "ja" and best["location"]["page"] == 1
    assert "経費" in best["text"]

    keyword = shuken(home, "search", "प्रशिक्षण कार्यक्रम", "--mode", "keyword", "--json")  # every collection
    assert keyword.returncode == 0, keyword.stderr
    assert json.loads(keyword.stdout)["data"][0]["document_name"] == "hi.txt"


def test_ask_prints_an_answer_and_its_sources(ingested):
    home, _view = ingested
    result = shuken(home, "ask", "What does the travel policy say about booking flights?", "-c", "office",
                    "--max-tokens", "32")
    assert result.returncode == 0, result.stderr
    answer, separator, sources = result.stdout.partition("\nSources:\n")
    assert separator and answer.strip() and answer.strip() != NOT_FOUND["en"]
    lines = sources.strip().splitlines()
    assert lines and lines[0].startswith("[1] policy.docx — ")
    quote = lines[0].split(" — ", 1)[1].removesuffix("…")
    assert len(quote) > 50 and quote in " ".join(SAMPLES["en"])  # the passage itself, shortened

    nothing = shuken(home, "ask", "How do I bake sourdough bread at home?", "-c", "office", "--max-tokens", "32")
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == NOT_FOUND["en"]
    assert "Sources:" not in nothing.stdout


def test_knowledge_commands_are_reachable_with_python_dash_m(tmp_path):
    result = shuken(tmp_path / "home", "collections", "list", "--json",
                    command=[sys.executable, "-m", "shuken.cli"], timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
