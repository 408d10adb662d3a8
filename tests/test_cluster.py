"""The provisioned node, the capability probe, health errors and `essearch doctor`."""

from __future__ import annotations

import json
import socket
import time

import pytest
from click.testing import CliRunner

from essearch.cli import main
from essearch.errors import ClusterConnectionError
from essearch.es import check_health, make_client, probe
from essearch.es.capabilities import Capabilities, analyzer_available
from essearch.settings import Settings


def test_node_is_the_requested_server(es_client, es_cluster):
    nodes = es_client.nodes.info().body["nodes"]
    versions = {node["version"] for node in nodes.values()}
    if es_cluster.node is not None:
        assert versions == {es_cluster.node.version}
    assert all(v.split(".")[0] in ("8", "9") for v in versions), versions
    assert es_client.transport.compat_major == int(next(iter(versions)).split(".")[0])
    assert es_client.cluster.health().body["status"] in ("green", "yellow")


def test_probe_on_test_node(es_client, es_server_version):
    caps = probe(es_client)
    assert caps.version_tuple == es_server_version
    assert caps.license_type == "basic"  # a fresh node: the probe waited for its licence
    assert caps.enterprise_licensed is False
    assert caps.rrf_retriever is False and caps.linear_retriever is False
    assert caps.inference is False
    assert caps.limited == ""


def _node_accepts(es_client, name: str, index_options: dict) -> bool:
    from elasticsearch import BadRequestError

    try:
        es_client.indices.create(
            index=name,
            mappings={
                "properties": {
                    "v": {
                        "type": "dense_vector",
                        "dims": 128,
                        "similarity": "cosine",
                        "index_options": index_options,
                    }
                }
            },
            settings={"number_of_replicas": 0},
        )
    except BadRequestError:
        return False
    es_client.indices.delete(index=name)
    return True


def test_capabilities_match_what_the_node_accepts(es_client, index_name):
    """index_options types and rescore_vector: the version table agrees with the real server."""
    from essearch.es.versions import INDEX_TYPE_SINCE

    caps = probe(es_client)
    for index_type in INDEX_TYPE_SINCE:
        accepted = _node_accepts(es_client, f"{index_name}-{index_type}", {"type": index_type})
        assert caps.supports_index_type(index_type) is accepted, (caps.version, index_type)
    rescore = {"type": "int8_hnsw", "rescore_vector": {"oversample": 2.0}}
    if caps.supports_index_type("int8_hnsw"):
        accepted = _node_accepts(es_client, f"{index_name}-rescore", rescore)
        assert caps.rescore_vector is accepted, caps.version


def test_probe_agrees_with_the_node_about_reindex(es_client):
    """The probe says `_reindex` is absent; the node itself confirms it."""
    caps = probe(es_client)
    from elasticsearch import ApiError, NotFoundError

    try:
        es_client.reindex(source={"index": "nope-src"}, dest={"index": "nope-dst"})
        server_has_reindex = True
    except NotFoundError as exc:  # missing source index: the endpoint exists
        server_has_reindex = "index_not_found" in str(exc)
    except ApiError:
        server_has_reindex = False
    assert caps.reindex is server_has_reindex
    assert caps.painless is False and caps.ingest_processors is False


def test_dense_vector_and_knn_usable(es_client, index_name):
    es_client.indices.create(
        index=index_name,
        mappings={"properties": {"v": {"type": "dense_vector", "dims": 3, "similarity": "cosine"}}},
        settings={"number_of_replicas": 0},
    )
    es_client.index(index=index_name, id="a", document={"v": [1, 0, 0]}, refresh=True)
    es_client.index(index=index_name, id="b", document={"v": [0, 1, 0]}, refresh=True)
    hits = es_client.search(
        index=index_name,
        knn={"field": "v", "query_vector": [0.9, 0.1, 0], "k": 1, "num_candidates": 10},
    ).body["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a"]


def test_analyzer_check_matches_the_node(es_client):
    caps = probe(es_client)
    assert analyzer_available(es_client, "standard") is True
    assert analyzer_available(es_client, "english") is caps.analysis_common
    assert "english" not in caps.analyzers or caps.analysis_common


def test_health_ok(es_url, es_server_version):
    health = check_health(Settings(es={"url": es_url}))
    assert health.capabilities.version_tuple == es_server_version
    assert health.url == es_url
    assert health.shards is not None and health.shards["unassigned_shards"] >= 0


def test_unreachable_url_is_clear_and_fast():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        with pytest.raises(ClusterConnectionError) as info:
            check_health(Settings(es={"url": url, "max_retries": 3}))
    assert time.monotonic() - started < 5
    assert url in str(info.value)
    assert "refused" in str(info.value)


def test_capabilities_derivations():
    enterprise = Capabilities(
        version="9.2.1",
        license_type="enterprise",
        modules=frozenset({"rank-rrf", "x-pack-inference", "reindex", "analysis-common"}),
        plugins=frozenset({"analysis-smartcn"}),
    )
    assert enterprise.rrf_retriever and enterprise.linear_retriever and enterprise.rrf_weights
    assert enterprise.inference and enterprise.reindex
    assert {"english", "smartcn"} <= enterprise.analyzers
    basic = Capabilities(version="8.17.0", modules=frozenset({"rank-rrf"}))
    assert basic.rrf_module and not basic.rrf_retriever
    old = Capabilities(version="8.15.0", license_type="trial", modules=frozenset({"rank-rrf"}))
    assert not old.rrf_retriever  # retrievers GA in 8.16
    assert not Capabilities(version="8.11.0").supports_index_type("int4_hnsw")


def test_doctor_json_shape(es_url, monkeypatch):
    monkeypatch.setenv("ESSEARCH_ES_URL", es_url)
    monkeypatch.setenv("ESSEARCH_ES_API_KEY", "do-not-print-me")
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["cluster"]["version"].split(".")[0] in ("8", "9")
    assert report["license"]["type"] == "basic"
    assert report["capabilities"]["reindex"] is False
    assert report["capabilities"]["knn"] is True
    assert report["settings"]["es"]["api_key"] == "**********"
    assert "do-not-print-me" not in result.output


def test_doctor_unreachable_exit_code(monkeypatch):
    monkeypatch.setenv("ESSEARCH_ES_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert "http://127.0.0.1:9" in report["error"]


def test_client_factory_reuses_one_pool(es_url):
    client = make_client(Settings(es={"url": es_url}))
    try:
        assert client.cluster.health().body["status"] in ("green", "yellow")
        assert client.transport.retry_on_status == (429, 502, 503, 504)
    finally:
        client.close()


def test_help_shows_no_secrets(monkeypatch):
    monkeypatch.setenv("ESSEARCH_ES_API_KEY", "do-not-print-me")
    monkeypatch.setenv("ESSEARCH_EMBEDDER_API_KEY", "sk-do-not-print")
    runner = CliRunner()
    outputs = [runner.invoke(main, ["--help"]).output]
    for name in main.list_commands(None):  # type: ignore[arg-type]
        outputs.append(runner.invoke(main, [name, "--help"]).output)
    joined = "\n".join(outputs)
    assert "do-not-print-me" not in joined and "sk-do-not-print" not in joined


def test_client_factory_encodes_vectors_with_orjson(es_url, index_name):
    """Vectors survive the fast serializer exactly (float32 values round-trip)."""
    from elasticsearch.serializer import OrjsonSerializer

    client = make_client(Settings(es={"url": es_url}))
    try:
        assert isinstance(
            client.transport.serializers.get_serializer("application/json"), OrjsonSerializer
        )
        vec = [0.1, -0.25, 0.3333333432674408]
        client.index(index=index_name, id="1", document={"v": vec}, refresh=True)
        got = client.get(index=index_name, id="1", source_includes=["v"]).body["_source"]["v"]
        assert got == vec
    finally:
        client.close()


def test_missing_zip_without_maven_is_a_clear_error(monkeypatch, tmp_path):
    from essearch.errors import ProvisioningError
    from essearch.es import provision as prov

    monkeypatch.setenv("MAVEN_REPO_LOCAL", str(tmp_path))
    monkeypatch.setattr(prov.shutil, "which", lambda name: None)
    with pytest.raises(ProvisioningError, match="`mvn` is not installed") as info:
        prov.fetch_zip("9.5.4")
    assert str(tmp_path) in str(info.value) and "ESSEARCH_ES_URL" in str(info.value)
