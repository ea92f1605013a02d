"""Model registry: manifests from real GGUF files, integrity refusal, sandboxed chat templates."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest

from shuken.config import Settings
from shuken.errors import InvalidRequest, ModelIntegrityError, NotFound
from shuken.gateway.host import ModelHost
from shuken.registry.builtin import BUNDLED
from shuken.registry.chat_template import UnsafeChatTemplate, check_chat_template, render_chat_prompt

SMOLLM2 = BUNDLED[0].locate(Path("."))
MALICIOUS_TEMPLATES = [
    "{{ messages.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{% set x = messages.append({'role': 'system', 'content': 'pwned'}) %}{{ messages }}",
    "{{ 'a' * 10**9 }}",  # resource exhaustion: would freeze the server
    "{{ [1] * 1000000 }}",
    "{{ 9 ** 99999999 }}",
]


@pytest.fixture
def smollm2_copy(tmp_path) -> Path:
    target = tmp_path / "copy.gguf"
    shutil.copyfile(SMOLLM2, target)
    return target


def write_gguf_with_template(path: Path, template: str) -> Path:
    """A header-only GGUF whose chat template is the attacker's."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("evil")
    writer.add_context_length(512)
    writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_add_records_a_full_manifest(services, smollm2_copy):
    manifest = services.registry.add_file(smollm2_copy, "my-smol", license="Apache-2.0", source="test")
    assert manifest.sha256 == hashlib.sha256(smollm2_copy.read_bytes()).hexdigest()
    assert manifest.size_bytes == smollm2_copy.stat().st_size and manifest.format == "gguf"
    meta = manifest.metadata
    assert meta["architecture"] == "llama" and meta["quantization"] == "Q4_1"
    assert 100e6 < meta["parameters"] < 200e6 and meta["context_length"] == 8192
    assert meta["has_chat_template"] and meta["chat_template_status"] == "ok"
    assert manifest.capabilities == ["chat", "completions"]
    stored = services.registry.get("my-smol")
    assert stored.sha256 == manifest.sha256 and stored.license == "Apache-2.0" and stored.added_at


def test_bundled_models_are_seeded_once(services):
    seeded = services.registry.seed_bundled()
    assert {m.name for m in seeded} == {"smollm2-135m-instruct", "gemma-3-270m", "multilingual-e5-small"}
    gemma = services.registry.get("gemma-3-270m")
    assert gemma.capabilities == ["completions"] and gemma.metadata["chat_template_status"] == "absent"
    assert Path(gemma.path).parent == services.registry.models_dir
    assert services.registry.seed_bundled() == []
    gemma_file = Path(gemma.path)
    with services.db.session() as session:  # a lost bundled manifest comes back on the next seed
        from shuken.store.tables import ModelRow
        session.delete(session.get(ModelRow, "gemma-3-270m"))
    assert [m.name for m in services.registry.seed_bundled()] == ["gemma-3-270m"] and gemma_file.exists()
    assert all(services.registry.verify(m)[0] for m in services.registry.list())


def test_corrupted_model_file_is_refused_at_load(services, smollm2_copy, isolated_home):
    manifest = services.registry.add_file(smollm2_copy, "fragile")
    with smollm2_copy.open("r+b") as handle:
        handle.seek(smollm2_copy.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    ok, reason = services.registry.verify(manifest)
    assert not ok and "mismatch" in reason
    host = ModelHost(services.registry, Settings(home=isolated_home))
    with pytest.raises(ModelIntegrityError, match="Refusing to load model 'fragile'"):
        asyncio.run(host.engine_for("fragile", "chat"))
    assert "fragile" not in host.engines


def test_missing_file_is_reported(services, smollm2_copy):
    manifest = services.registry.add_file(smollm2_copy, "vanishing")
    smollm2_copy.unlink()
    ok, reason = services.registry.verify(manifest)
    assert not ok and "missing" in reason


@pytest.mark.parametrize("template", MALICIOUS_TEMPLATES)
def test_malicious_template_is_neutralised(template):
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(UnsafeChatTemplate):
        render_chat_prompt(template, messages)
    assert messages == [{"role": "user", "content": "hi"}]  # the sandbox kept the input immutable
    assert check_chat_template(template).startswith("blocked")


def test_model_with_malicious_template_gets_no_chat(services, tmp_path):
    path = write_gguf_with_template(tmp_path / "evil.gguf", MALICIOUS_TEMPLATES[1])
    manifest = services.registry.add_file(path, "evil")
    assert manifest.metadata["chat_template_status"].startswith("blocked")
    assert manifest.capabilities == ["completions"]


def test_real_template_renders_in_sandbox():
    from shuken.registry.gguf_metadata import read_gguf_metadata

    template = read_gguf_metadata(SMOLLM2)["chat_template"]
    prompt = render_chat_prompt(template, [{"role": "user", "content": "Bonjour"}])
    assert "Bonjour" in prompt and prompt.rstrip().endswith("assistant")


def test_bad_inputs_are_clear_errors(services, tmp_path, smollm2_copy):
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    with pytest.raises(InvalidRequest, match="not a GGUF"):
        services.registry.add_file(not_gguf, "notes")
    with pytest.raises(InvalidRequest, match="No file"):
        services.registry.add_file(tmp_path / "absent.gguf", "absent")
    with pytest.raises(InvalidRequest, match="Invalid model name"):
        services.registry.add_file(smollm2_copy, "bad name!")
    services.registry.add_file(smollm2_copy, "once")
    with pytest.raises(InvalidRequest, match="already exists"):
        services.registry.add_file(smollm2_copy, "once")
    with pytest.raises(NotFound):
        services.registry.get("never")
    assert [m.name for m in services.registry.list()] == ["once"]  # failures stored nothing


def test_remove_keeps_user_files_and_bundled_models(services, smollm2_copy):
    services.registry.seed_bundled()
    with pytest.raises(InvalidRequest, match="cannot be removed"):
        services.registry.remove("smollm2-135m-instruct")
    services.registry.add_file(smollm2_copy, "temp")
    services.registry.remove("temp")
    assert smollm2_copy.exists()
    with pytest.raises(NotFound):
        services.registry.get("temp")


def test_header_reader_agrees_with_the_gguf_library():
    from gguf import GGUFReader, GGUFValueType

    from shuken.registry.gguf_metadata import read_gguf_header

    version, fields, tensors = read_gguf_header(SMOLLM2)
    reference = GGUFReader(str(SMOLLM2), "r")
    assert version == 3
    scalars = 0
    for key, field in reference.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            assert fields[key]["length"] == len(field.data), key
        else:
            expected = field.contents()
            assert fields[key] == (pytest.approx(expected) if isinstance(expected, float) else expected), key
            scalars += 1
    assert scalars > 10 and set(fields) == {k for k in reference.fields if not k.startswith("GGUF.")}
    assert [(name, prod) for name, prod in tensors] == [
        (t.name, tuple(int(d) for d in t.shape)) for t in reference.tensors]


@pytest.mark.parametrize("keep_bytes", [3, 24, 4096, 1_000_000])
def test_truncated_gguf_is_a_clear_error(services, tmp_path, keep_bytes):
    truncated = tmp_path / "cut.gguf"
    with SMOLLM2.open("rb") as source:
        truncated.write_bytes(source.read(keep_bytes))
    with pytest.raises(InvalidRequest, match="GGUF"):
        services.registry.add_file(truncated, "cut")


def test_gguf_truncated_inside_tensor_data_is_refused(services, tmp_path):
    truncated = tmp_path / "short.gguf"
    with SMOLLM2.open("rb") as source:
        truncated.write_bytes(source.read(SMOLLM2.stat().st_size - 1000))
    with pytest.raises(InvalidRequest, match="truncated"):
        services.registry.add_file(truncated, "short")


def test_template_runtime_errors_are_clean_request_errors():
    from shuken.registry.chat_template import ChatTemplateFailed

    with pytest.raises(ChatTemplateFailed, match="TypeError"):
        render_chat_prompt("{{ 1 + 'a' }}", [{"role": "user", "content": "hi"}])
    assert check_chat_template("{{ 1 + 'a' }}").startswith("error")
