"""ModelRegistry: add, list, inspect, verify and remove model manifests; seed the bundled models."""

from __future__ import annotations

import builtins
import re
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from shuken.errors import InvalidRequest, ModelIntegrityError, NotFound
from shuken.localisable import tr
from shuken.registry.builtin import BUNDLED, BundledModel
from shuken.registry.chat_template import check_chat_template
from shuken.registry.gguf_metadata import read_gguf_metadata
from shuken.registry.hashing import sha256_file
from shuken.registry.manifest import ModelManifest
from shuken.store import Database
from shuken.store.tables import ModelRow

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _to_manifest(row: ModelRow) -> ModelManifest:
    return ModelManifest(
        name=row.name, engine=row.engine, format=row.format, path=row.path, sha256=row.sha256,
        size_bytes=row.size_bytes, metadata=row.model_metadata or {}, options=row.options or {},
        license=row.license, source=row.source, added_at=row.added_at,
    )


def gguf_capabilities(meta: dict) -> list[str]:
    if meta.get("chat_template_status") == "ok":
        return ["chat", "completions"]
    return ["completions"]


class ModelRegistry:
    def __init__(self, db: Database, models_dir: Path):
        self.db = db
        self.models_dir = models_dir

    # -- queries ---------------------------------------------------------------------------------
    def list(self) -> list[ModelManifest]:
        with self.db.session() as session:
            return [_to_manifest(row) for row in session.scalars(select(ModelRow).order_by(ModelRow.name))]

    def get(self, name: str) -> ModelManifest:
        with self.db.session() as session:
            row = session.get(ModelRow, name)
            if row is None:
                raise NotFound(tr("The model '%(name)s' does not exist. List models with GET /v1/models.", name=name),
                               param="model")
            return _to_manifest(row)

    # -- changes ---------------------------------------------------------------------------------
    def _check_new_name(self, name: str) -> None:
        if not NAME_PATTERN.match(name):
            raise InvalidRequest(
                tr("Invalid model name %(name)s: use letters, digits and . _ : - (up to 128 characters).",
                   name=repr(name)), param="name"
            )
        with self.db.session() as session:
            if session.get(ModelRow, name) is not None:
                raise InvalidRequest(tr("A model named '%(name)s' already exists; remove it first or pick another "
                                        "name.", name=name), param="name", code="model_exists")

    def _insert(self, manifest: ModelManifest) -> ModelManifest:
        with self.db.session() as session:
            session.add(ModelRow(
                name=manifest.name, engine=manifest.engine, path=manifest.path, sha256=manifest.sha256,
                size_bytes=manifest.size_bytes, format=manifest.format, model_metadata=manifest.metadata,
                options=manifest.options, license=manifest.license, source=manifest.source,
                added_at=manifest.added_at,
            ))
        return manifest

    def add_file(self, path: Path, name: str, *, license: str | None = None, source: str | None = None,
                 show_progress: bool = False, engine: str = "llamacpp") -> ModelManifest:
        """Register a local GGUF file in place: read its header, check its template, record its hash."""
        self._check_new_name(name)
        path = path.expanduser().resolve()
        if not path.is_file():
            raise InvalidRequest(tr("No file at %(path)s.", path=str(path)), param="path")
        meta = read_gguf_metadata(path)
        template = meta.get("chat_template")
        meta["chat_template_status"] = check_chat_template(template) if template else "absent"
        meta["capabilities"] = gguf_capabilities(meta)
        return self._insert(ModelManifest(
            name=name, engine=engine, format="gguf", path=str(path), sha256=sha256_file(path, show_progress),
            size_bytes=path.stat().st_size, metadata=meta, license=license, source=source or f"file:{path}",
            added_at=datetime.now(timezone.utc),
        ))

    def add_remote(self, name: str, *, base_url: str, upstream_model: str | None = None,
                   capabilities: builtins.list[str] | None = None,
                   license: str | None = None, context_length: int | None = None) -> ModelManifest:
        """Register a model served by an OpenAI-compatible server on the organisation's network."""
        self._check_new_name(name)
        if not re.match(r"^https?://", base_url):
            raise InvalidRequest(tr("base_url must start with http:// or https://"), param="base_url")
        capabilities = capabilities or ["chat", "completions"]
        unknown = set(capabilities) - {"chat", "completions", "embeddings"}
        if unknown:
            raise InvalidRequest(tr("Unknown capabilities: %(capabilities)s", capabilities=", ".join(sorted(unknown))),
                                 param="capabilities")
        return self._insert(ModelManifest(
            name=name, engine="openai", format="remote", metadata={"capabilities": capabilities,
                                                                   "context_length": context_length},
            # The upstream's bearer key is a secret: it lives in settings (SHUKEN_UPSTREAM_KEYS), never here.
            options={"base_url": base_url.rstrip("/"), "upstream_model": upstream_model or name},
            license=license, source=base_url, added_at=datetime.now(timezone.utc),
        ))

    def add_bundled(self, bundled: BundledModel, show_progress: bool = False) -> ModelManifest:
        path = bundled.locate(self.models_dir)
        if bundled.format == "gguf":
            manifest = self.add_file(path, bundled.name, license=bundled.license, source=bundled.source,
                                     show_progress=show_progress, engine=bundled.engine)
            return manifest
        self._check_new_name(bundled.name)
        return self._insert(ModelManifest(
            name=bundled.name, engine=bundled.engine, format=bundled.format, path=str(path),
            sha256=sha256_file(path, show_progress), size_bytes=path.stat().st_size,
            metadata={"capabilities": list(bundled.capabilities or ())}, license=bundled.license,
            source=bundled.source, added_at=datetime.now(timezone.utc),
        ))

    def seed_bundled(self, show_progress: bool = False) -> builtins.list[ModelManifest]:
        """Register every model shipped in a pip package that is not registered yet; return the new ones."""
        with self.db.session() as session:
            present = set(session.scalars(select(ModelRow.name)))
        return [self.add_bundled(bundled, show_progress) for bundled in BUNDLED if bundled.name not in present]

    def remove(self, name: str) -> ModelManifest:
        if name in {bundled.name for bundled in BUNDLED}:
            raise InvalidRequest(tr("'%(name)s' ships with Shuken and is always available; it cannot be removed.",
                                    name=name), param="name", code="model_bundled")
        manifest = self.get(name)
        with self.db.session() as session:
            session.delete(session.get(ModelRow, name))
        return manifest  # the file stays where it is: it is the user's, and other names may share it

    # -- integrity -------------------------------------------------------------------------------
    def verify(self, manifest: ModelManifest, show_progress: bool = False) -> tuple[bool, str]:
        """(ok, reason). Remote models have no file to check."""
        if manifest.path is None or manifest.sha256 is None:
            return True, tr("remote model: nothing to hash")
        path = Path(manifest.path)
        if not path.is_file():
            return False, tr("file missing: %(path)s", path=str(path))
        actual = sha256_file(path, show_progress)
        if actual != manifest.sha256:
            return False, tr("sha256 mismatch: manifest %(expected)s…, file %(actual)s…",
                             expected=manifest.sha256[:12], actual=actual[:12])
        return True, tr("sha256 matches")

    def require_intact(self, manifest: ModelManifest) -> None:
        ok, reason = self.verify(manifest)
        if not ok:
            raise ModelIntegrityError(tr(
                "Refusing to load model '%(name)s': %(reason)s. The file changed since it was registered; "
                "restore it, or re-register it with `shuken models remove %(name)s` then `shuken models add`.",
                name=manifest.name, reason=reason,
            ))
