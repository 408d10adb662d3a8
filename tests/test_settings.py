"""Settings: env parsing, defaults, one message per bad field, secrets never shown."""

from __future__ import annotations

import pytest

from essearch.errors import ConfigurationError
from essearch.es.client import client_kwargs
from essearch.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("ESSEARCH_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults():
    s = load_settings()
    assert s.es.url == ["http://localhost:9200"]
    assert s.es.verify_certs is True
    assert s.index.name == "essearch"
    assert s.embedder.provider == "local"
    assert s.index.vector_index_type == "int8_hnsw"


def test_nested_env_variables(monkeypatch):
    monkeypatch.setenv("ESSEARCH_ES_URL", "http://a:9200, https://b:9243/")
    monkeypatch.setenv("ESSEARCH_ES_REQUEST_TIMEOUT", "7.5")
    monkeypatch.setenv("ESSEARCH_INDEX_NAME", "docs")
    monkeypatch.setenv("ESSEARCH_EMBEDDER_BATCH_SIZE", "16")
    monkeypatch.setenv("ESSEARCH_EMBEDDER_PROVIDER", "openai")
    monkeypatch.setenv("ESSEARCH_INDEX_CHUNK_SIZE", "640")
    monkeypatch.setenv("ESSEARCH_INDEX_CHUNK_OVERLAP", "64")
    s = load_settings()
    assert (s.index.chunk_size, s.index.chunk_overlap) == (640, 64)
    assert s.es.url == ["http://a:9200", "https://b:9243"]
    assert s.es.request_timeout == 7.5
    assert s.index.name == "docs"
    assert s.embedder.batch_size == 16
    assert s.embedder.provider == "openai"


def test_dotenv_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("ESSEARCH_INDEX_REPLICAS=0\nESSEARCH_EMBEDDER_MODEL=m\n")
    s = load_settings()
    assert s.index.replicas == 0
    assert s.embedder.model == "m"


def test_one_message_per_bad_field(monkeypatch):
    monkeypatch.setenv("ESSEARCH_ES_URL", "ftp://nope")
    monkeypatch.setenv("ESSEARCH_INDEX_REPLICAS", "-1")
    monkeypatch.setenv("ESSEARCH_EMBEDDER_PROVIDER", "cohere")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    text = str(info.value)
    lines = [line for line in text.splitlines() if line.startswith("  - ")]
    assert len(lines) == 3
    assert "ESSEARCH_ES_URL='ftp://nope'" in text
    assert "ESSEARCH_INDEX_REPLICAS='-1'" in text
    assert "embedder.provider" in text


def test_invalid_index_name():
    with pytest.raises(ConfigurationError, match="not a valid index name"):
        load_settings(index={"name": "My Index"})


def test_secrets_masked_everywhere(monkeypatch, caplog):
    monkeypatch.setenv("ESSEARCH_ES_API_KEY", "sekret-api-key-123")
    monkeypatch.setenv("ESSEARCH_ES_PASSWORD", "hunter2-password")
    monkeypatch.setenv("ESSEARCH_EMBEDDER_API_KEY", "sk-openai-abcdef")
    s = load_settings()
    for shown in (repr(s), str(s), str(s.masked()), str(s.model_dump())):
        assert "sekret-api-key-123" not in shown
        assert "hunter2-password" not in shown
        assert "sk-openai-abcdef" not in shown
    # ...but the client factory does get the real value
    assert client_kwargs(s.es)["api_key"] == "sekret-api-key-123"


def test_secret_not_in_validation_error(monkeypatch):
    monkeypatch.setenv("ESSEARCH_ES_PASSWORD", "hunter2-password")
    monkeypatch.setenv("ESSEARCH_ES_MAX_RETRIES", "lots")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "hunter2-password" not in str(info.value)
    assert "es.max_retries" in str(info.value)


def test_basic_auth_and_tls_options():
    s = Settings(
        es={
            "url": "https://es:9200",
            "username": "elastic",
            "password": "pw",
            "ca_certs": "/tmp/ca.crt",
            "verify_certs": False,
        }
    )
    kwargs = client_kwargs(s.es)
    assert kwargs["basic_auth"] == ("elastic", "pw")
    assert kwargs["ca_certs"] == "/tmp/ca.crt"
    assert kwargs["verify_certs"] is False
    assert kwargs["retry_on_status"] == (429, 502, 503, 504)
    assert kwargs["hosts"] == ["https://es:9200"]
