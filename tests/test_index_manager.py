"""IndexManager against the real node: create, compare, versions, aliases, guard, drop."""

from __future__ import annotations

import pytest
from elasticsearch import ApiError

from essearch.embedders.base import EmbedderInfo
from essearch.errors import CapabilityError, ConfigurationError, ModelMismatchError
from essearch.es.capabilities import probe
from essearch.index import IndexManager, VectorSpec, model_from_mapping, vector_problem
from essearch.index.definitions import validate_vector_field
from essearch.index.schema import META_KEY, VECTOR_FIELD

MINILM = EmbedderInfo(
    provider="local", model="all-MiniLM-L6-v2", dims=384, similarity="dot_product", normalize=True
)
OTHER = EmbedderInfo(provider="openai", model="text-embedding-3-small", dims=512)


def unit(dims: int, hot: int = 0) -> list[float]:
    vector = [0.0] * dims
    vector[hot] = 1.0
    return vector


def aliases_of(es_client, index: str) -> set[str]:
    return set(es_client.indices.get_alias(index=index).body[index]["aliases"])


@pytest.fixture
def manager(es_client, index_name, settings_for):
    return IndexManager(es_client, settings_for(index_name), MINILM)


def test_init_creates_v1_behind_both_aliases(manager, es_client, index_name):
    result = manager.init()
    assert result.created
    assert result.index == f"{index_name}-v1"
    assert aliases_of(es_client, result.index) == {index_name, f"{index_name}-write"}
    write = es_client.indices.get_alias(name=f"{index_name}-write").body
    assert write[result.index]["aliases"][f"{index_name}-write"]["is_write_index"] is True
    assert manager.current_index() == manager.write_index() == result.index
    assert manager.versions() == [result.index]
    assert es_client.indices.exists_index_template(name=manager.template_name)


def test_meta_round_trip(manager, es_client):
    index = manager.init().index
    mapping = es_client.indices.get_mapping(index=index).body
    assert model_from_mapping(mapping) == MINILM
    assert manager.recorded_model() == MINILM
    assert manager.recorded_model(index) == MINILM
    meta = mapping[index]["mappings"]["_meta"][META_KEY]
    assert meta["schema_version"] == 1
    assert meta["index_version"] == 1
    assert meta["created_at"]
    assert meta["essearch_version"]
    vector = mapping[index]["mappings"]["properties"][VECTOR_FIELD]
    assert (vector["dims"], vector["similarity"]) == (384, "dot_product")


def test_second_init_with_the_same_definition_is_a_no_op(manager, es_client):
    first = manager.init()
    uuid = es_client.indices.get_settings(index=first.index).body[first.index]["settings"]
    second = manager.init()
    assert not second.created
    assert second.up_to_date
    assert second.index == first.index
    assert manager.versions() == [first.index]
    again = es_client.indices.get_settings(index=first.index).body[first.index]["settings"]
    assert again["index"]["uuid"] == uuid["index"]["uuid"]


def test_changed_definition_lists_differences_and_changes_nothing(
    manager, es_client, index_name, settings_for
):
    index = manager.init().index
    before = es_client.indices.get_mapping(index=index).body
    changed = IndexManager(
        es_client,
        settings_for(index_name, index={"definition": "example-metadata"}),
        OTHER,
    )
    result = changed.init()
    assert not result.created
    assert not result.up_to_date
    paths = {d.path for d in result.differences}
    assert "mappings.properties.vector.dims" in paths
    assert "mappings._meta.essearch.embedder.model" in paths
    assert "mappings.properties.metadata.properties" in paths
    assert "settings.index.refresh_interval" in paths
    dims = next(d for d in result.differences if d.path == "mappings.properties.vector.dims")
    assert (dims.live, dims.rendered) == (384, 512)
    assert "the index has 384, the definition renders 512" in str(dims)
    assert es_client.indices.get_mapping(index=index).body == before
    assert manager.versions() == [index]


def test_removed_field_is_noticed_through_the_body_hash(
    manager, es_client, index_name, settings_for, tmp_path
):
    manager.init()
    smaller = tmp_path / "smaller.json"
    smaller.write_text('{"extends": "default", "mappings": {"properties": {"title": null}}}')
    result = IndexManager(
        es_client, settings_for(index_name, index={"definition": str(smaller)}), MINILM
    ).init()
    assert [d.path for d in result.differences] == ["definition"]
    assert "fields only in the index: title" in str(result.differences[0])


def test_mismatch_is_refused_and_nothing_is_written(manager, es_client, index_name):
    manager.init()
    es_client.index(index=manager.write_alias, id="a", document={"vector": unit(384)})
    es_client.indices.refresh(index=index_name)
    before = es_client.count(index=index_name)["count"]
    with pytest.raises(ModelMismatchError) as caught:
        manager.check_model(OTHER)
    text = str(caught.value)
    assert f"{index_name}-v1" in text
    assert "local/all-MiniLM-L6-v2 (384 dims" in text
    assert "openai/text-embedding-3-small (512 dims" in text
    es_client.indices.refresh(index=index_name)
    assert es_client.count(index=index_name)["count"] == before == 1
    assert manager.check_model() == MINILM


def test_check_model_on_a_missing_index_says_to_init(manager):
    with pytest.raises(ConfigurationError, match="essearch init"):
        manager.check_model()


def test_missing_analyzer_names_it_and_what_is_offered(es_client, index_name, settings_for):
    caps = probe(es_client)
    if "english" in caps.analyzers:
        pytest.skip("this node has analysis-common")
    manager = IndexManager(
        es_client, settings_for(index_name, index={"analyzer": "english"}), MINILM
    )
    with pytest.raises(CapabilityError) as caught:
        manager.init()
    text = str(caught.value)
    assert "'english'" in text
    assert "index.analyzer" in text
    for offered in sorted(caps.analyzers):
        assert offered in text
    assert manager.versions() == []
    assert not es_client.indices.exists_index_template(name=manager.template_name)


def test_available_analyzer_is_used(es_client, index_name, settings_for):
    manager = IndexManager(
        es_client, settings_for(index_name, index={"analyzer": "simple"}), MINILM
    )
    index = manager.init().index
    props = es_client.indices.get_mapping(index=index).body[index]["mappings"]["properties"]
    assert props["text"]["analyzer"] == "simple"


def test_template_applies_to_a_second_version(es_client, index_name, settings_for):
    settings = settings_for(
        index_name, index={"analyzer": "simple", "vector_index_type": "int4_hnsw", "shards": 2}
    )
    manager = IndexManager(es_client, settings, MINILM)
    manager.init()
    # an index created by anyone else under the pattern (e.g. a _reindex dest) gets the body
    plain = f"{index_name}-v7"
    es_client.indices.create(index=plain)
    got = es_client.indices.get(index=plain).body[plain]
    assert got["settings"]["index"]["number_of_shards"] == "2"
    assert got["settings"]["index"]["number_of_replicas"] == "0"
    assert got["mappings"]["properties"]["text"]["analyzer"] == "simple"
    assert got["mappings"]["properties"]["vector"]["index_options"]["type"] == "int4_hnsw"
    assert model_from_mapping(got) == MINILM
    # create_version continues after the highest version and is behind no alias
    v8 = manager.create_version()
    assert v8 == f"{index_name}-v8"
    assert aliases_of(es_client, v8) == set()
    assert manager.differences(v8) == []


def test_create_version_with_another_embedder_then_swap(manager, es_client, index_name):
    v1 = manager.init().index
    v2 = manager.create_version(embedder=OTHER)
    assert v2 == f"{index_name}-v2"
    assert manager.recorded_model(v2) == OTHER
    assert manager.current_index() == v1
    manager.swap_aliases(v2, v1)
    assert manager.current_index() == manager.write_index() == v2
    assert aliases_of(es_client, v1) == set()
    assert aliases_of(es_client, v2) == {index_name, f"{index_name}-write"}
    with pytest.raises(ModelMismatchError):
        manager.check_model()
    assert manager.check_model(OTHER) == OTHER
    # writes through the write alias now land in v2 with its dims
    es_client.index(index=manager.write_alias, id="x", document={"vector": unit(512)}, refresh=True)
    assert es_client.count(index=v2)["count"] == 1
    assert es_client.count(index=v1)["count"] == 0


def test_swap_is_atomic_when_the_old_index_does_not_hold_the_aliases(manager, es_client):
    v1 = manager.init().index
    v2 = manager.create_version()
    with pytest.raises(ConfigurationError, match="nothing changed"):
        manager.swap_aliases(v1, v2)  # reversed: v2 holds no alias, so the whole request fails
    assert manager.current_index() == v1
    assert aliases_of(es_client, v2) == set()


def test_status_reports_aliases_docs_and_mismatch(manager, es_client, index_name):
    manager.init()
    es_client.index(index=manager.write_alias, id="a", document={"vector": unit(384)})
    es_client.indices.refresh(index=index_name)
    report = manager.status().to_dict()
    assert report["exists"] and not report["mismatch"]
    read = next(a for a in report["aliases"] if a["role"] == "read")
    assert read["alias"] == index_name
    (entry,) = read["indices"]
    assert entry["index"] == f"{index_name}-v1"
    assert entry["docs"] == 1
    assert entry["size_bytes"] > 0
    assert entry["health"] == "green"
    assert entry["recorded"]["model"] == MINILM.model
    other = IndexManager(es_client, manager.settings, OTHER).status()
    assert other.mismatch
    assert any("dims: index 384 vs configured 512" in m for m in other.versions[0].mismatch)


def test_drop_refuses_aliased_indices_unless_forced(manager, es_client, index_name):
    v1 = manager.init().index
    v2 = manager.create_version()
    with pytest.raises(ConfigurationError, match=f"{v1} <- "):
        manager.drop()
    with pytest.raises(ConfigurationError, match="refusing"):
        manager.drop(v1)
    assert es_client.indices.exists(index=v1)
    with pytest.raises(ConfigurationError, match="not a version of"):
        manager.drop(f"{index_name}-v*")
    plan = manager.drop(v2)  # unaliased: allowed
    assert plan.indices == [v2]
    assert not es_client.indices.exists(index=v2)
    manager.drop(force=True)
    assert manager.versions() == []
    assert not manager.template_exists()
    assert manager.init().created  # a clean slate again


# -- what we accept vs what the node accepts -----------------------------------------------------
VECTOR_FIELDS = [
    {"dims": 1},
    {"dims": 4096},
    {"dims": 0},
    {"dims": 4097},
    {"dims": 8, "index_options": {"type": "int4_hnsw"}},
    {"dims": 7, "index_options": {"type": "int4_hnsw"}},
    {"dims": 7, "index_options": {"type": "int4_flat"}},
    {"dims": 63, "index_options": {"type": "bbq_hnsw"}},
    {"dims": 64, "index_options": {"type": "bbq_hnsw"}},
    {"dims": 65, "index_options": {"type": "bbq_flat"}},
    {"dims": 8, "index_options": {"type": "hnsw", "m": 32, "ef_construction": 200}},
    {"dims": 8, "index_options": {"type": "flat", "m": 16}},
    {"dims": 8, "element_type": "byte", "index_options": {"type": "hnsw"}},
    {"dims": 8, "element_type": "byte", "index_options": {"type": "int8_hnsw"}},
    {"dims": 8, "index_options": {"type": "int8_hnsw", "rescore_vector": {"oversample": 3}}},
    {"dims": 8, "index_options": {"type": "int8_hnsw", "rescore_vector": {"oversample": 0}}},
    {"dims": 8, "index_options": {"type": "int8_hnsw", "rescore_vector": {"oversample": 0.5}}},
    {"dims": 8, "index_options": {"type": "int8_hnsw", "rescore_vector": {"oversample": 11}}},
    {"dims": 8, "index_options": {"type": "hnsw", "rescore_vector": {"oversample": 2}}},
]


@pytest.mark.parametrize("field", VECTOR_FIELDS, ids=lambda f: str(f).replace(" ", ""))
def test_our_vector_validation_agrees_with_the_node(es_client, index_name, field):
    spec = {"type": "dense_vector", "similarity": "cosine", **field}
    caps = probe(es_client)
    try:
        validate_vector_field(spec, "f", caps)
        ours = True
    except ConfigurationError:
        ours = False
    try:
        es_client.indices.create(index=index_name, mappings={"properties": {"v": spec}})
        node = True
    except ApiError as exc:
        assert exc.status_code == 400
        node = False
    assert ours == node, f"we say {ours}, the node says {node} for {spec}"


VECTORS = [
    ({"dims": 2, "similarity": "dot_product"}, [0.6, 0.8]),
    ({"dims": 2, "similarity": "dot_product"}, [0.6, 0.8006]),
    ({"dims": 2, "similarity": "dot_product"}, [0.6, 0.81]),
    ({"dims": 2, "similarity": "cosine"}, [0.0, 0.0]),
    ({"dims": 2, "similarity": "cosine"}, [3.0, 4.0]),
    ({"dims": 2, "similarity": "cosine"}, [3.0, 4.0, 5.0]),
    ({"dims": 2, "similarity": "cosine", "element_type": "byte"}, [3, -4]),
    ({"dims": 2, "similarity": "cosine", "element_type": "byte"}, [3, 1.5]),
    ({"dims": 2, "similarity": "cosine", "element_type": "byte"}, [3, 200]),
    ({"dims": 2, "similarity": "l2_norm", "element_type": "byte"}, [-128, 127]),
]


@pytest.mark.parametrize(("field", "vector"), VECTORS, ids=lambda v: str(v).replace(" ", ""))
def test_our_vector_check_agrees_with_the_node(es_client, index_name, field, vector):
    mapping = {"type": "dense_vector", "index_options": {"type": "hnsw"}, **field}
    es_client.indices.create(index=index_name, mappings={"properties": {"v": mapping}})
    ours = vector_problem(vector, VectorSpec.from_mapping(mapping, "v")) is None
    try:
        es_client.index(index=index_name, id="1", document={"v": vector})
        node = True
    except ApiError as exc:
        assert exc.status_code == 400
        node = False
    assert ours == node, f"we say {ours}, the node says {node} for {vector} into {field}"


async def test_guard_helpers_with_the_async_client(manager, es_url, index_name):

    from essearch.index import check_mapping_response

    manager.init()
    # httpx transport: aiohttp (the es_async_client fixture's default) is not installed here
    from essearch.es import make_async_client
    from essearch.settings import Settings

    settings = Settings(es={"url": es_url})
    async with make_async_client(settings, node_class="httpxasync") as client:
        response = (await client.indices.get_mapping(index=index_name)).body
    check_mapping_response(MINILM, response)
    with pytest.raises(ModelMismatchError, match=f"{index_name}-v1"):
        check_mapping_response(OTHER, response)


def test_template_follows_the_serving_version(manager, es_client, index_name):
    """After a swap (or a swap back) the template renders what the aliases point to."""

    def template_dims() -> int:
        body = es_client.indices.get_index_template(name=manager.template_name).body
        mappings = body["index_templates"][0]["index_template"]["template"]["mappings"]
        return mappings["properties"]["vector"]["dims"]

    v1 = manager.init().index
    v2 = manager.create_version(embedder=OTHER)
    assert template_dims() == OTHER.dims  # the newest version's body while it is being built
    manager.swap_aliases(v2, v1)
    assert template_dims() == OTHER.dims
    manager.swap_aliases(v1, v2)  # rollback
    assert template_dims() == MINILM.dims
    plain = f"{index_name}-v9"
    es_client.indices.create(index=plain)
    assert model_from_mapping(es_client.indices.get(index=plain).body[plain]) == MINILM
