"""Settings: the one place that reads environment variables and `.env`.

Every variable has the `ESSEARCH_` prefix; groups are separated by the first underscore after it,
so `ESSEARCH_ES_URL` is `es.url` and `ESSEARCH_EMBEDDER_BATCH_SIZE` is `embedder.batch_size`.
Secrets are `SecretStr`: they print as `**********` in reprs, logs, errors and `--help`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from essearch.errors import ConfigurationError
from essearch.logs import MASK

VectorIndexType = Literal[
    "hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat", "int4_flat", "bbq_flat"
]


class ElasticsearchSettings(BaseModel):
    """How to reach the cluster."""

    url: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:9200"],
        description="One URL or a comma-separated list of URLs.",
    )
    cloud_id: str | None = None
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certs: Path | None = None
    ssl_assert_fingerprint: str | None = None
    verify_certs: bool = True
    request_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0)

    @field_validator("url", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("url")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one URL is needed")
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} must start with http:// or https://")
        return [url.rstrip("/") for url in value]

    @field_validator("ssl_assert_fingerprint")
    @classmethod
    def _check_fingerprint(cls, value: str | None) -> str | None:
        """Accept the forms people paste (colons, spaces, any case); 64 hex digits = SHA-256."""
        if value is None or not value.strip():
            return None
        digits = "".join(value.replace(":", "").split()).lower()
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError(
                f"must be the certificate's SHA-256 fingerprint, 64 hex digits (colons allowed); "
                f"got {len(digits)} characters"
            )
        return digits


class IndexSettings(BaseModel):
    """What the index is called and how it is built."""

    name: str = Field("essearch", description="Read alias; physical indices are <name>-v<N>.")
    definition: str = Field(
        "default", description="A mappings/ definition name or a path to a JSON file."
    )
    shards: int = Field(1, ge=1)
    replicas: int = Field(1, ge=0)
    analyzer: str = "standard"
    cjk_analyzer: str = Field(
        "whitespace",
        description="Analyzer of the CJK word field (essearch makes its tokens; a plugin such as "
        "smartcn or icu_analyzer may replace the built-in whitespace).",
    )
    vector_index_type: VectorIndexType = "int8_hnsw"
    hnsw_m: int | None = Field(None, ge=2)
    hnsw_ef_construction: int | None = Field(None, ge=2)
    rescore_oversample: float | None = Field(None, ge=0)
    chunk_size: int | None = Field(
        None, ge=1, description="Chunk size (MiniLM tokens, else characters); unset: the model's."
    )
    chunk_overlap: int | None = Field(None, ge=0, description="Overlap between chunks, same unit.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        bad = set(value) & set('\\/*?"<>| ,#:')
        if not value or value != value.lower() or bad or value.startswith(("-", "_", "+")):
            raise ValueError(
                f'{value!r} is not a valid index name (lower case, no spaces or \\/*?"<>|,#:)'
            )
        return value


class EmbedderSettings(BaseModel):
    """Which model turns text into vectors."""

    provider: str = Field(
        "local", description="A registered backend: built-in or an `essearch.embedders` plugin."
    )
    model: str | None = Field(None, description="Model name or path; each provider has a default.")
    base_url: str | None = None
    api_key: SecretStr | None = None
    organization: str | None = None
    dimensions: int | None = Field(None, ge=1, le=4096)
    batch_size: int = Field(64, ge=1)
    concurrency: int = Field(4, ge=1)
    device: str | None = None
    threads: int | None = Field(
        None, ge=1, description="Intra-op threads of a local model; unset: the cores available."
    )
    normalize: bool = True
    query_prompt: str | None = None
    document_prompt: str | None = None
    query_prompt_name: str | None = Field(
        None, description="huggingface/TEI: a prompt name of the model (e.g. query)."
    )
    document_prompt_name: str | None = None
    inference_id: str | None = None
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    cache_path: Path | None = Field(
        None, description="SQLite file for the embedding cache; unset means no cache."
    )

    @field_validator("provider")
    @classmethod
    def _check_provider(cls, value: str) -> str:
        from essearch.embedders.registry import available_providers, is_provider

        if not is_provider(value):
            raise ValueError(
                f"unknown embedder provider {value!r}; known: {', '.join(available_providers())} "
                "(a package adds one under the `essearch.embedders` entry-point group)"
            )
        return value


class RerankSettings(BaseModel):
    """The optional rerank stage (`search --rerank`): which cross-encoder, how many candidates."""

    provider: Literal["tei", "cohere", "cross-encoder", "elasticsearch"] = "tei"
    base_url: str | None = Field(None, description="TEI or Cohere/Jina-compatible server URL.")
    model: str | None = Field(None, description="Model name (cohere) or directory (cross-encoder).")
    api_key: SecretStr | None = None
    inference_id: str | None = Field(None, description="Elasticsearch rerank inference endpoint.")
    top_n: int = Field(50, ge=1, le=1000, description="Candidates handed to the reranker.")
    timeout: float = Field(10.0, gt=0)
    max_retries: int = Field(2, ge=0)


class ServeKey(BaseModel):
    """One API key of `essearch serve`; `indices` limits it to those aliases (None: all served)."""

    key: SecretStr
    indices: list[str] | None = None


class ServeSettings(BaseModel):
    """`essearch serve`: where it listens, who may call it, and the bounds on each request."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_keys: Annotated[list[ServeKey], NoDecode] = Field(
        default_factory=list,
        description='Comma-separated keys, or JSON {"key": ["alias", ...] or "*"} (secret).',
    )
    indices: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Aliases the service exposes; empty: index.name only."
    )
    knowledge: dict[str, str] = Field(
        default_factory=dict, description="Dify knowledge_id -> alias (JSON); else id = alias."
    )
    dify_mode: Literal["bm25", "knn", "hybrid"] = "hybrid"
    dify_fusion: Literal["auto", "rrf", "linear", "client-rrf", "client-linear"] = "auto"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_k: int = Field(100, ge=1, le=10_000)
    max_from: int = Field(1000, ge=0, le=10_000)
    max_filter_depth: int = Field(8, ge=1, le=64)
    max_batch: int = Field(1000, ge=1)
    dead_letter: Path | None = Field(
        None, description="JSONL file for failed documents of POST .../documents; unset: none."
    )

    @field_validator("indices", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        """`k1,k2` or `{"k1": ["docs"], "k2": "*"}`; the keys themselves are never echoed."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not valid JSON (at position {exc.pos})") from None
            else:
                return [{"key": part.strip()} for part in text.split(",") if part.strip()]
        if isinstance(value, dict):
            keys = []
            for key, allowed in value.items():
                if allowed in ("*", None):
                    keys.append({"key": key})
                elif isinstance(allowed, str):
                    keys.append({"key": key, "indices": [allowed]})
                else:
                    keys.append({"key": key, "indices": allowed})
            return keys
        return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """All of essearch's settings."""

    model_config = SettingsConfigDict(
        env_prefix="ESSEARCH_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    es: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    log_level: str = "WARNING"

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level (one of {', '.join(LOG_LEVELS)})")
        return level

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets shown as `**********`."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and `.env`), with one clear message per bad field."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(format_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from None


def _group_of_model(model_name: str) -> str | None:
    """The settings group a model is (`EmbedderSettings` -> `embedder`), None for `Settings`."""
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and field.annotation.__name__ == model_name:
            return name
    return None


def format_validation_error(exc: ValidationError) -> str:
    """One line per bad field, naming the full variable (`ESSEARCH_EMBEDDER_BATCH_SIZE`), also when
    only one group (say `EmbedderSettings`, with CLI overrides) was validated."""
    group = _group_of_model(exc.title)
    lines = ["invalid settings:"]
    for err in exc.errors():
        parts = [group, *err["loc"]] if group else list(err["loc"])
        loc = ".".join(str(part) for part in parts)
        env = "ESSEARCH_" + "_".join(str(part) for part in parts).upper()
        shown = err.get("input")
        if isinstance(shown, SecretStr) or any(s in loc for s in ("api_key", "password")):
            shown = MASK
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc} ({env}={shown!r}): {message}")
    return "\n".join(lines)


# Variables with the prefix that are read elsewhere on purpose (not settings).
NON_SETTING_VARIABLES = frozenset({"ESSEARCH_DATA"})


def known_variables() -> list[str]:
    """Every ESSEARCH_* variable that maps to a setting."""
    names = []
    for group, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names += [f"ESSEARCH_{group}_{name}".upper() for name in model.model_fields]
        else:
            names.append(f"ESSEARCH_{group}".upper())
    return names


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per ESSEARCH_* variable no setting reads (a typo is otherwise silently
    ignored), with the closest real name."""
    known = known_variables()
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("ESSEARCH_") or upper in known or upper in NON_SETTING_VARIABLES:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not an essearch setting and is ignored{hint}")
    return warnings
