"""The one settings object: read from SHUKEN_* environment variables and an optional shuken.toml.

Created once by the CLI or app factory and passed down; no other module reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHUKEN_", toml_file="shuken.toml", extra="ignore")

    home: Path = Field(default=Path("~/.shuken"), description="Where the database and models live.")
    host: str = "127.0.0.1"
    port: int = 8321
    default_model: str = "smollm2-135m-instruct"

    # Engine capacity: sequences decoded together in one batch, and their context each.
    parallel_sequences: int = Field(default=8, ge=1, le=64)
    context_per_sequence: int = Field(default=2048, ge=128)
    threads: int = Field(default_factory=_default_threads, ge=1)
    batch_tokens: int = Field(default=512, ge=32, description="Largest batch handed to llama_decode.")
    max_queue: int = Field(default=64, ge=0, description="Requests waiting for a slot before 429.")

    upstream_timeout_seconds: float = 600.0
    upstream_keys: dict[str, str] = Field(
        default_factory=dict, description="Bearer keys for upstream models, by Shuken model name (JSON in env)."
    )

    # Know: embeddings, chunking, relevance, uploads.
    embedding_model: str = Field(default="multilingual-e5-small", description="Embeds chunks and questions.")
    chunk_units: int = Field(default=320, ge=32, le=2000, description="Chunk budget in approximate model tokens.")
    min_relevance: float = Field(
        default=0.80, ge=-1, le=1,
        description="Cosine a passage in the question's language needs before an answer may rest on it "
                    "(keeps ≥ 99% of answerable questions in every dev set; bench/retrieval.py).")
    min_relevance_cross_lingual: float = Field(
        default=0.80, ge=-1, le=1,
        description="The same for a passage in another language. e5 scores translations lower (answerable "
                    "en→ar/hi/zh questions: 0.73–0.82), but off-topic questions score as high across languages, "
                    "so the default refuses rather than invents; lower it (e.g. 0.75) to answer across languages.")
    ann_min_vectors: int = Field(
        default=1_000_000, ge=1, description="Collections this large use an approximate (HNSW) vector index.")
    upload_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1, description="Largest single uploaded file.")
    upload_max_request_bytes: int = Field(default=1024 * 1024 * 1024, ge=1, description="Largest upload request.")
    upload_max_files: int = Field(default=200, ge=1, description="Most files per upload request (after unzip).")
    archive_max_bytes: int = Field(default=500 * 1024 * 1024, ge=1, description="Most bytes a .zip may expand to.")
    job_stale_seconds: float = Field(default=30.0, gt=0, description="A running job silent this long is resumed.")

    # Govern: sovereignty, audit checkpoints, retention sweeps, the first administrator.
    sovereign: bool = Field(default=True, description="Offline switches on and the egress guard installed: "
                                                      "no outbound connection except loopback and egress_allow.")
    egress_allow: list[str] = Field(default_factory=list, description="Hosts, IPs or CIDRs (optionally :port) "
                                    "outbound connections may reach, e.g. on-prem upstream engines (JSON in env).")
    audit_signing_key: Path | None = Field(default=None, description="Ed25519 key (PEM) that signs audit "
                                           "checkpoints; default keys/audit-signing.pem under home. Keep a copy "
                                           "of the checkpoints file beside it elsewhere.")
    audit_checkpoint_minutes: float = Field(default=60, ge=0, description="Sign chain heads this often (0: off).")
    retention_sweep_minutes: float = Field(default=60, gt=0, description="How often retention is enforced.")
    bootstrap_admin_email: str = Field(default="admin@localhost", description="The owner created on first start.")

    # Use: the web UI's sign-in sessions.
    web_session_idle_minutes: float = Field(default=120, gt=0, description="A session unused this long ends.")
    web_session_hours: float = Field(default=12, gt=0, description="A session ends this long after sign-in.")
    web_secure_cookies: bool = Field(default=True, description="Mark the session cookie Secure (browsers still "
                                     "send it to http://127.0.0.1 and localhost; turn off only for plain http "
                                     "on another host name, which you should not do).")

    log_level: str = "INFO"
    log_prompts: bool = Field(default=False, description="Log prompt and completion text (off: privacy).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def home_dir(self) -> Path:
        path = self.home.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home_dir / 'shuken.db'}"

    @property
    def signing_key_path(self) -> Path:
        return (self.audit_signing_key or self.home_dir / "keys" / "audit-signing.pem").expanduser()

    @property
    def files_dir(self) -> Path:
        return self.home_dir / "files"

    @property
    def models_dir(self) -> Path:
        path = self.home_dir / "models"
        path.mkdir(parents=True, exist_ok=True)
        return path
