"""The Elasticsearch inference backend: the clear "not available" path on the test node, and
the endpoint-creation body checked against the documented `openai` service shape."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from essearch.embedders import create_embedder
from essearch.embedders.elasticsearch_backend import (
    ElasticsearchEmbedder,
    create_inference_endpoint,
    masked_endpoint_body,
    openai_endpoint_body,
)
from essearch.errors import CapabilityError, ConfigurationError
from essearch.es import probe


def test_not_available_on_the_test_node(es_client, settings_for, index_name) -> None:
    capabilities = probe(es_client)
    if capabilities.inference:
        pytest.skip("this cluster has the inference API")
    settings = settings_for(index_name, embedder={"provider": "elasticsearch", "inference_id": "e"})
    with pytest.raises(CapabilityError) as caught:
        create_embedder(settings, client=es_client)
    message = str(caught.value)
    assert "inference API is not available" in message
    assert capabilities.license_type in message or "inference module" in message
    assert "ESSEARCH_EMBEDDER_PROVIDER=local" in message


def test_not_available_from_settings_alone(settings_for, index_name, es_client) -> None:
    if probe(es_client).inference:
        pytest.skip("this cluster has the inference API")
    settings = settings_for(index_name, embedder={"provider": "elasticsearch", "inference_id": "e"})
    with pytest.raises(CapabilityError, match="not available"):
        create_embedder(settings)  # makes its own client from settings.es


async def test_not_available_async(es_client, es_url) -> None:
    from essearch.es import make_async_client
    from essearch.settings import Settings

    if probe(es_client).inference:
        pytest.skip("this cluster has the inference API")
    # httpx transport: aiohttp (the client's default async transport) is not installed here
    client = make_async_client(
        Settings(es={"url": es_url, "request_timeout": 60}), node_class="httpxasync"
    )
    try:
        embedder = ElasticsearchEmbedder("e", async_client=client, check=False)
        with pytest.raises(CapabilityError, match="not available"):
            await embedder.aembed_query("hello")
    finally:
        await client.close()


def test_endpoint_creation_refused_clearly(es_client) -> None:
    if probe(es_client).inference:
        pytest.skip("this cluster has the inference API")
    body = openai_endpoint_body(api_key="k", model_id="m")
    with pytest.raises(CapabilityError, match="not available"):
        create_inference_endpoint(es_client, "t-never-created", body)


def test_inference_id_required() -> None:
    with pytest.raises(ConfigurationError, match="ESSEARCH_EMBEDDER_INFERENCE_ID"):
        ElasticsearchEmbedder("", check=False)


def test_openai_endpoint_body_documented_shape() -> None:
    # reference section 4: PUT _inference/text_embedding/local-emb
    body = openai_endpoint_body(
        api_key="ignored",
        model_id="nomic-embed-text",
        url="http://host:11434/v1/embeddings",
        dimensions=768,
    )
    assert body == {
        "service": "openai",
        "service_settings": {
            "api_key": "ignored",
            "model_id": "nomic-embed-text",
            "url": "http://host:11434/v1/embeddings",
            "dimensions": 768,
        },
    }


def test_openai_endpoint_body_minimal_and_optional_fields() -> None:
    minimal = openai_endpoint_body(api_key=SecretStr("sk-real"), model_id="text-embedding-3-small")
    # url defaults server-side; dimensions "sent only when the user sets it"
    assert minimal == {
        "service": "openai",
        "service_settings": {"api_key": "sk-real", "model_id": "text-embedding-3-small"},
    }
    full = openai_endpoint_body(
        api_key="k",
        model_id="m",
        organization_id="org-1",
        similarity="dot_product",
        max_input_tokens=512,
        chunking_settings={"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1},
    )
    assert full["service_settings"]["organization_id"] == "org-1"
    assert full["service_settings"]["similarity"] == "dot_product"
    assert full["service_settings"]["max_input_tokens"] == 512
    assert full["chunking_settings"]["strategy"] == "sentence"
    masked = masked_endpoint_body(full)
    assert masked["service_settings"]["api_key"] == "**********"
    assert full["service_settings"]["api_key"] == "k"  # the original is untouched


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"api_key": "", "model_id": "m"}, "api_key"),
        ({"api_key": "k", "model_id": ""}, "model_id"),
        ({"api_key": "k", "model_id": "m", "url": "host:11434"}, "http://"),
    ],
)
def test_openai_endpoint_body_rejects_bad_input(kwargs, match) -> None:
    with pytest.raises(ConfigurationError, match=match):
        openai_endpoint_body(**kwargs)
