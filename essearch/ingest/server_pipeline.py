"""Server-side embedding: an ES ingest pipeline whose `inference` processor embeds each document.

For clusters with ingest processors and the inference API (Enterprise/trial licence), documents can
be sent without vectors and Elasticsearch fills `vector` from `text` with the inference endpoint
`settings.embedder.inference_id`. The pipeline becomes the index's `default_pipeline`. On a cluster
without those capabilities (the test node) installing it fails with a clear CapabilityError.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from essearch.errors import CapabilityError, ConfigurationError
from essearch.es.capabilities import Capabilities
from essearch.index.schema import INDEXED_AT_FIELD, TEXT_FIELD, VECTOR_FIELD, write_alias_for
from essearch.settings import Settings


def pipeline_id_for(index_name: str) -> str:
    """`<index name>-embed`."""
    return f"{index_name}-embed"


def inference_pipeline_body(
    inference_id: str,
    *,
    input_field: str = TEXT_FIELD,
    output_field: str = VECTOR_FIELD,
    description: str | None = None,
) -> dict[str, Any]:
    """`PUT _ingest/pipeline/<id>` body: embed `input_field` into `output_field`, stamp the time."""
    return {
        "description": description
        or f"essearch: embed {input_field} into {output_field} with {inference_id}",
        "processors": [
            {
                "inference": {
                    "model_id": inference_id,
                    "input_output": [{"input_field": input_field, "output_field": output_field}],
                }
            },
            {
                "set": {
                    "field": INDEXED_AT_FIELD,
                    "value": "{{{_ingest.timestamp}}}",
                    "override": False,
                }
            },
        ],
        "on_failure": [
            {
                "set": {
                    "field": "_ingest_error",
                    "value": "{{{_ingest.on_failure_message}}}",
                }
            },
            {"fail": {"message": "essearch embed pipeline: {{{_ingest.on_failure_message}}}"}},
        ],
    }


def default_pipeline_settings(pipeline_id: str | None) -> dict[str, Any]:
    """`PUT <index>/_settings` body; None removes the default pipeline."""
    return {"index": {"default_pipeline": pipeline_id}}


def missing_capabilities(caps: Capabilities) -> list[str]:
    """What the cluster lacks for server-side embedding, in words."""
    missing = []
    if not caps.ingest_processors:
        missing.append("ingest processors (module ingest-common)")
    if not caps.inference_module:
        missing.append("the inference API (x-pack inference plugin)")
    elif not caps.inference:
        missing.append(
            f"an Enterprise or trial licence for the inference API (licence: {caps.license_type})"
        )
    return missing


def require_server_embedding(caps: Capabilities, settings: Settings) -> str:
    """The inference endpoint id to use, or a CapabilityError/ConfigurationError saying why not."""
    missing = missing_capabilities(caps)
    if missing:
        raise CapabilityError(
            f"Elasticsearch {caps.version} cannot embed at ingest time: it lacks "
            + "; ".join(missing)
            + ". Use client-side ingest (`essearch ingest`), which embeds before indexing."
        )
    inference_id = settings.embedder.inference_id
    if not inference_id:
        raise ConfigurationError(
            "no inference endpoint configured: set ESSEARCH_EMBEDDER_INFERENCE_ID to the id of "
            "an endpoint created with PUT _inference/text_embedding/<id>"
        )
    return inference_id


def install_pipeline(
    client: Elasticsearch,
    settings: Settings,
    capabilities: Capabilities | None = None,
    *,
    pipeline_id: str | None = None,
) -> dict[str, Any]:
    """Create the pipeline and make it the default pipeline of the index behind the write alias."""
    if capabilities is None:
        from essearch.es import probe

        capabilities = probe(client)
    inference_id = require_server_embedding(capabilities, settings)
    pipeline_id = pipeline_id or pipeline_id_for(settings.index.name)
    client.ingest.put_pipeline(id=pipeline_id, body=inference_pipeline_body(inference_id))
    write_alias = write_alias_for(settings.index.name)
    client.indices.put_settings(index=write_alias, body=default_pipeline_settings(pipeline_id))
    return {"pipeline": pipeline_id, "inference_id": inference_id, "index": write_alias}


def uninstall_pipeline(
    client: Elasticsearch, settings: Settings, *, pipeline_id: str | None = None
) -> dict[str, Any]:
    """Unset the default pipeline and delete the pipeline (absent ones are fine)."""
    pipeline_id = pipeline_id or pipeline_id_for(settings.index.name)
    write_alias = write_alias_for(settings.index.name)
    quiet = client.options(ignore_status=404)
    quiet.indices.put_settings(index=write_alias, body=default_pipeline_settings(None))
    quiet.ingest.delete_pipeline(id=pipeline_id)
    return {"pipeline": pipeline_id, "index": write_alias, "removed": True}
