"""The multilingual presets through each way of running a model: a local model directory (the
packaged MiniLM copied under the preset's name: no model can be downloaded here), Ollama, and an
OpenAI-compatible server (TEI, vLLM, Xinference), the last two as local HTTP servers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from test_embedders_remote import FakeServer

from essearch.embedders import create_embedder
from essearch.embedders.local import packaged_model_path
from essearch.embedders.prompts import BGE_ZH_QUERY, QWEN3_QUERY
from essearch.index.chunking import default_config
from essearch.settings import EmbedderSettings
from essearch.text.guard import coverage_warning


@pytest.fixture
def fake(local_embedder, httpserver: HTTPServer) -> FakeServer:
    server = FakeServer(local_embedder)
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(server.openai)
    httpserver.expect_request("/api/embed", method="POST").respond_with_handler(server.ollama)
    return server


@pytest.mark.parametrize(
    ("directory", "query_prefix", "document_prefix", "chunk_size"),
    [
        ("bge-small-zh-v1.5", BGE_ZH_QUERY, "", 400),
        ("multilingual-e5-small", "query: ", "passage: ", 400),
        ("bge-m3", "", "", 512),
    ],
)
def test_local_model_directory_gets_its_preset(
    tmp_path: Path, local_embedder, directory, query_prefix, document_prefix, chunk_size
) -> None:
    packaged = packaged_model_path()
    assert packaged is not None
    model_dir = tmp_path / directory
    shutil.copytree(packaged, model_dir)
    embedder = create_embedder(EmbedderSettings(provider="local", model=str(model_dir)))
    assert (embedder.query_prompt or "") == query_prefix
    assert (embedder.document_prompt or "") == document_prefix
    query = np.array(embedder.embed_query("台湾的高铁"))
    # the same model (the directory is exported at fp32, the default runs int8 weights: they agree
    # to ~1e-3), so the prompt shows as which text the query vector matches
    with_prompt = np.array(local_embedder.embed_documents([f"{query_prefix}台湾的高铁"])[0])
    assert float(query @ with_prompt) >= 0.99  # unit vectors: the dot product is the cosine
    if query_prefix:  # the prompt was really prepended
        without = np.array(local_embedder.embed_documents(["台湾的高铁"])[0])
        assert float(query @ with_prompt) > float(query @ without)
    config = default_config("local", str(model_dir))
    assert (config.unit, config.size) == ("tokens", chunk_size)
    assert config.tokenizer_path == str(model_dir / "tokenizer.json")
    assert coverage_warning(str(model_dir), {"zh": 1.0}) is None  # covers Chinese


@pytest.mark.parametrize(
    ("model", "query_prefix", "document_prefix"),
    [
        ("BAAI/bge-small-zh-v1.5", BGE_ZH_QUERY, ""),
        ("intfloat/multilingual-e5-base", "query: ", "passage: "),
        ("Qwen/Qwen3-Embedding-0.6B", QWEN3_QUERY, ""),
        ("BAAI/bge-m3", "", ""),
    ],
)
def test_openai_compatible_server_gets_the_prompts(
    httpserver: HTTPServer, fake: FakeServer, model, query_prefix, document_prefix
) -> None:
    embedder = create_embedder(
        EmbedderSettings(
            provider="openai", model=model, base_url=httpserver.url_for("/v1"), api_key="sk-x"
        )
    )
    embedder.embed_documents(["北京是首都"])
    embedder.embed_query("首都在哪里")
    sent = [r["body"] for r in fake.requests]
    assert all(body["model"] == model for body in sent)
    assert sent[-2]["input"] == [f"{document_prefix}北京是首都"]
    assert sent[-1]["input"] == [f"{query_prefix}首都在哪里"]


@pytest.mark.parametrize(
    ("model", "query_prefix"), [("bge-m3", ""), ("qwen3-embedding:0.6b", QWEN3_QUERY)]
)
def test_ollama_gets_the_prompts(httpserver: HTTPServer, fake: FakeServer, model, query_prefix):
    embedder = create_embedder(
        EmbedderSettings(provider="ollama", model=model, base_url=httpserver.url_for(""))
    )
    vector = embedder.embed_query("首都在哪里")
    assert len(vector) == 384
    assert fake.requests[-1]["body"]["input"] == [f"{query_prefix}首都在哪里"]
    assert fake.requests[-1]["body"]["model"] == model
