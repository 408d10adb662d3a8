"""Definitions, rendering, validation and the guard helpers: pure functions, no cluster needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from essearch.embedders.base import EmbedderInfo
from essearch.errors import ConfigurationError, EmbeddingError, ModelMismatchError
from essearch.es.capabilities import Capabilities
from essearch.index import (
    VectorSpec,
    check_mapping_response,
    check_model,
    compare_body,
    load_definition,
    model_from_mapping,
    render,
    swap_actions,
    validate_vector,
    vector_problem,
)
from essearch.index import schema as S
from essearch.index.definitions import builtin_mappings_dirs, deep_merge, validate_vector_field
from essearch.index.diff import body_fingerprint, flatten_settings, referenced_analyzers
from essearch.settings import Settings

MINILM = EmbedderInfo(
    provider="local", model="all-MiniLM-L6-v2", dims=384, similarity="dot_product", normalize=True
)
REPO = Path(__file__).resolve().parent.parent
CURRENT = Capabilities(version="9.5.4")


def settings(**index) -> Settings:
    return Settings(index={"name": "unit", "replicas": 0, **index})


def vector_of(body):
    return body["mappings"]["properties"][S.VECTOR_FIELD]


def test_default_body_has_the_contract_fields_and_the_embedder():
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    props = body["mappings"]["properties"]
    assert {
        S.ID_FIELD,
        S.DOC_ID_FIELD,
        S.CHUNK_FIELD,
        S.TITLE_FIELD,
        S.TEXT_FIELD,
        S.METADATA_FIELD,
        S.CONTENT_HASH_FIELD,
        S.INDEXED_AT_FIELD,
        S.VECTOR_FIELD,
    } <= set(props)
    assert props[S.TEXT_FIELD]["analyzer"] == "standard"
    assert vector_of(body)["dims"] == 384
    assert vector_of(body)["similarity"] == "dot_product"
    assert vector_of(body)["index_options"] == {"type": "int8_hnsw"}
    template = body["mappings"]["dynamic_templates"][0]["metadata_strings_as_keywords"]
    assert template["path_match"] == "metadata.*"
    assert template["mapping"]["type"] == "keyword"
    assert body["settings"] == {"number_of_shards": 1, "number_of_replicas": 0}
    meta = body["mappings"]["_meta"][S.META_KEY]
    assert meta["embedder"] == MINILM.to_dict()
    assert meta["schema_version"] == S.SCHEMA_VERSION
    assert {"essearch_version", "created_at", "definition"} <= set(meta)


def test_similarity_is_cosine_for_an_unnormalised_embedder():
    raw = EmbedderInfo(provider="openai", model="m", dims=1536)
    body = render(load_definition("default"), settings(), raw, CURRENT)
    assert vector_of(body)["similarity"] == "cosine"
    assert vector_of(body)["dims"] == 1536


def test_index_options_follow_settings_and_the_cluster_version():
    s = settings(
        vector_index_type="int8_hnsw", hnsw_m=32, hnsw_ef_construction=200, rescore_oversample=2.5
    )
    body = render(load_definition("default"), s, MINILM, CURRENT)
    assert vector_of(body)["index_options"] == {
        "type": "int8_hnsw",
        "m": 32,
        "ef_construction": 200,
        "rescore_vector": {"oversample": 2.5},
    }
    # 8.17 has no rescore_vector: left out rather than sent
    old = render(load_definition("default"), s, MINILM, Capabilities(version="8.17.0"))
    assert "rescore_vector" not in vector_of(old)["index_options"]
    # int4 arrived in 8.15
    with pytest.raises(ConfigurationError, match="int4_hnsw"):
        render(
            load_definition("default"),
            settings(vector_index_type="int4_hnsw"),
            MINILM,
            Capabilities(version="8.14.0"),
        )


def test_hnsw_parameters_on_a_flat_type_are_refused():
    with pytest.raises(ConfigurationError, match=r"index\.hnsw_m=16.*'int8_flat'"):
        render(
            load_definition("default"),
            settings(vector_index_type="int8_flat", hnsw_m=16),
            MINILM,
            CURRENT,
        )


@pytest.mark.parametrize(
    ("dims", "index_type", "message"),
    [
        (0, "hnsw", r"dims=0: must be in 1\.\.4096"),
        (4097, "hnsw", r"dims=4097: must be in 1\.\.4096"),
        (383, "int4_hnsw", "int4 needs an even dims, got 383"),
        (63, "bbq_hnsw", "bbq needs dims >= 64, got 63"),
    ],
)
def test_vector_validation_names_the_field_and_the_value(dims, index_type, message):
    info = EmbedderInfo(provider="local", model="m", dims=dims)
    with pytest.raises(ConfigurationError, match=message) as caught:
        render(load_definition("default"), settings(vector_index_type=index_type), info, CURRENT)
    assert "mappings.properties.vector" in str(caught.value)


def test_byte_vectors_cannot_be_quantized():
    spec = {"type": "dense_vector", "dims": 8, "element_type": "byte"}
    validate_vector_field({**spec, "index_options": {"type": "hnsw"}}, "f")
    with pytest.raises(ConfigurationError, match="quantization needs float vectors"):
        validate_vector_field({**spec, "index_options": {"type": "int8_hnsw"}}, "f")


def test_user_definition_extends_the_default(tmp_path):
    user = tmp_path / "mine.json"
    user.write_text(
        json.dumps(
            {
                "extends": "default",
                "settings": {"refresh_interval": "5s"},
                "mappings": {
                    "properties": {
                        "metadata": {"properties": {"lang": {"type": "keyword"}}},
                        "content_hash": None,
                        "summary": {"type": "text", "analyzer": "${analyzer}"},
                    }
                },
            }
        )
    )
    definition = load_definition(str(user))
    body = render(definition, settings(analyzer="simple"), MINILM, CURRENT)
    props = body["mappings"]["properties"]
    assert props["metadata"]["properties"]["lang"] == {"type": "keyword"}
    assert props["metadata"]["dynamic"] is True  # kept from the default
    assert S.CONTENT_HASH_FIELD not in props  # null removes
    assert props["summary"]["analyzer"] == "simple"
    assert props[S.TEXT_FIELD]["analyzer"] == "simple"
    assert body["settings"]["refresh_interval"] == "5s"
    assert definition.chain[0] == user.resolve()
    assert definition.chain[1].name == "default.json"


def test_a_local_mappings_dir_can_shadow_default_and_still_extend_it(tmp_path, monkeypatch):
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "default.json").write_text(
        json.dumps(
            {"extends": "default", "mappings": {"properties": {"lang": {"type": "keyword"}}}}
        )
    )
    monkeypatch.chdir(tmp_path)
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    assert body["mappings"]["properties"]["lang"] == {"type": "keyword"}
    assert S.VECTOR_FIELD in body["mappings"]["properties"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"mappings": {"properties": {}}', r"bad\.json:1:\d+: invalid JSON"),
        ('{"mapping": {}}', r"unknown key\(s\) \['mapping'\]"),
        ('{"extends": "no-such-definition"}', "no definition of that name"),
        (
            '{"extends": "default", "mappings": {"properties": {"x": {"type": "${nope}"}}}}',
            r"mappings\.properties\.x\.type='\$\{nope\}': unknown placeholder",
        ),
        (
            '{"extends": "default", "mappings": {"properties": {"vector": {"dims": 12}}}}',
            r"vector\.dims=12 but the embedder local/all-MiniLM-L6-v2 produces 384",
        ),
    ],
)
def test_bad_definition_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        render(load_definition(str(path)), settings(), MINILM, CURRENT)


def test_extends_cycle_is_refused(tmp_path):
    (tmp_path / "a.json").write_text('{"extends": "./b.json"}')
    (tmp_path / "b.json").write_text('{"extends": "./a.json"}')
    with pytest.raises(ConfigurationError, match="cycle"):
        load_definition(str(tmp_path / "a.json"))


def test_unknown_definition_lists_the_known_ones():
    with pytest.raises(ConfigurationError, match=r"definition='nope'.*known: .*default"):
        load_definition("nope")


def test_shipped_example_definition_renders():
    body = render(load_definition("example-metadata"), settings(), MINILM, CURRENT)
    assert body["mappings"]["properties"]["metadata"]["properties"]["published"]["type"] == "date"


def test_packaged_copy_matches_the_repository_mappings():
    packaged = REPO / "essearch" / "data" / "mappings"
    repo = REPO / "mappings"
    repo_files = sorted(p.name for p in repo.glob("*.json"))
    assert repo_files == sorted(p.name for p in packaged.glob("*.json"))
    for name in repo_files:
        assert (repo / name).read_text() == (packaged / name).read_text(), name
    assert builtin_mappings_dirs()  # found from the installed package


def test_deep_merge_replaces_lists_and_deletes_on_null():
    merged = deep_merge({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"c": [2], "e": 3}, "d": None})
    assert merged == {"a": {"b": 1, "c": [2], "e": 3}}


# -- vectors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vector", "spec", "problem"),
    [
        ([0.6, 0.8], VectorSpec(dims=2, similarity="dot_product"), None),
        ([0.6, 0.9], VectorSpec(dims=2, similarity="dot_product"), "unit-length"),
        ([0.0, 0.0], VectorSpec(dims=2, similarity="cosine"), "zero vector"),
        ([1.0, 2.0, 3.0], VectorSpec(dims=2), "has 3 dims, the index expects 2"),
        ([1, 200], VectorSpec(dims=2, element_type="byte"), r"vector\[1\]=200"),
        ([1, 1.5], VectorSpec(dims=2, element_type="byte"), r"vector\[1\]=1\.5"),
        ([3, -4], VectorSpec(dims=2, element_type="byte", similarity="dot_product"), None),
        ([1.0, float("nan")], VectorSpec(dims=2), "not a finite number"),
        ([1.0, "x"], VectorSpec(dims=2), "not a number"),
        ("abc", VectorSpec(dims=3), "expected a list"),
    ],
)
def test_vector_problem(vector, spec, problem):
    found = vector_problem(vector, spec)
    if problem is None:
        assert found is None
        validate_vector(vector, spec)
    else:
        assert found is not None
        with pytest.raises(EmbeddingError, match=problem):
            validate_vector(vector, spec)


def test_vector_spec_from_a_rendered_body():
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    spec = VectorSpec.from_body(body)
    assert spec == VectorSpec(dims=384, element_type="float", similarity="dot_product")
    assert vector_problem([1.0] + [0.0] * 383, spec) is None
    assert "has 383 dims" in vector_problem([0.0] * 383, body["mappings"]["properties"]["vector"])


# -- guard, comparison, aliases ------------------------------------------------------------------
def test_model_round_trip_through_a_mapping():
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    assert model_from_mapping(body) == MINILM
    assert model_from_mapping(body["mappings"]) == MINILM
    assert model_from_mapping({"unit-v1": {"mappings": body["mappings"]}}) == MINILM
    assert model_from_mapping({"properties": {}}) is None


def test_check_model_names_both_models_and_the_index():
    other = EmbedderInfo(provider="openai", model="text-embedding-3-small", dims=1536)
    check_model(MINILM, MINILM, "idx-v1")
    with pytest.raises(ModelMismatchError) as caught:
        check_model(other, MINILM, "idx-v1")
    text = str(caught.value)
    assert "idx-v1" in text
    assert "local/all-MiniLM-L6-v2 (384 dims" in text
    assert "openai/text-embedding-3-small (1536 dims" in text
    with pytest.raises(ModelMismatchError, match="no embedder recorded"):
        check_model(MINILM, None, "foreign")
    prompted = EmbedderInfo(**{**MINILM.to_dict(), "query_prompt": "query: "})
    with pytest.raises(ModelMismatchError, match="query_prompt"):
        check_model(prompted, MINILM, "idx-v1")


def test_check_mapping_response_checks_every_index():
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    other = render(
        load_definition("default"), settings(), EmbedderInfo("local", "e5", 384), CURRENT
    )
    response = {"a-v1": {"mappings": body["mappings"]}, "a-v2": {"mappings": other["mappings"]}}
    with pytest.raises(ModelMismatchError, match="a-v2"):
        check_mapping_response(MINILM, response)


def test_compare_body_ignores_defaults_and_volatile_meta_but_not_changes():
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    live = json.loads(json.dumps(body["mappings"]))
    live["_meta"][S.META_KEY]["created_at"] = "2000-01-01T00:00:00+00:00"
    live["properties"]["vector"].pop("element_type")  # ES omits the default
    live["properties"]["vector"]["index_options"]["m"] = 16  # ES adds defaults
    live["dynamic_templates"][0]["metadata_strings_as_keywords"]["mapping"]["ignore_above"] = 1024
    live["properties"]["metadata"]["dynamic"] = "true"  # ES answers strings
    flat = {k: str(v) for k, v in flatten_settings(body["settings"]).items()}
    assert compare_body(body, live, flat) == []
    changed = render(load_definition("default"), settings(analyzer="simple"), MINILM, CURRENT)
    paths = {d.path for d in compare_body(changed, live, flat)}
    assert paths == {
        "mappings.properties.title.analyzer",
        "mappings.properties.text.analyzer",
    }


def test_an_index_from_before_an_added_field_still_matches_its_definition():
    """`source` joined the layout later: an index made without it is no difference (ingest adds
    it in place), while any other missing field still is one."""
    body = render(load_definition("default"), settings(), MINILM, CURRENT)
    assert body["mappings"]["properties"][S.SOURCE_FIELD] == {"type": "keyword"}
    older = json.loads(json.dumps(body))
    older["mappings"]["properties"].pop(S.SOURCE_FIELD)
    assert body_fingerprint(older) == body_fingerprint(body)
    live = json.loads(json.dumps(older["mappings"]))
    live["_meta"][S.META_KEY]["body_hash"] = body_fingerprint(older)
    flat = {k: str(v) for k, v in flatten_settings(body["settings"]).items()}
    assert compare_body(body, live, flat) == []
    live["properties"].pop("language")
    assert [d.path for d in compare_body(body, live, flat)] == ["mappings.properties.language"]


def test_flatten_settings_matches_es_flat_keys():
    assert flatten_settings({"number_of_shards": 1, "index": {"refresh_interval": "5s"}}) == {
        "index.number_of_shards": 1,
        "index.refresh_interval": "5s",
    }


def test_swap_actions_move_both_aliases_in_one_request():
    actions = swap_actions("docs", "docs-write", "docs-v2", "docs-v1")
    assert actions == [
        {"remove": {"index": "docs-v1", "alias": "docs", "must_exist": True}},
        {"remove": {"index": "docs-v1", "alias": "docs-write", "must_exist": True}},
        {"add": {"index": "docs-v2", "alias": "docs"}},
        {"add": {"index": "docs-v2", "alias": "docs-write", "is_write_index": True}},
    ]


def test_referenced_analyzers_skip_custom_ones():
    body = {
        "settings": {"analysis": {"analyzer": {"mine": {"type": "custom", "tokenizer": "x"}}}},
        "mappings": {
            "properties": {
                "a": {"type": "text", "analyzer": "mine"},
                "b": {"type": "text", "analyzer": "smartcn", "search_analyzer": "standard"},
                "c": {"type": "keyword", "fields": {"t": {"type": "text", "analyzer": "english"}}},
            }
        },
    }
    assert referenced_analyzers(body) == {"smartcn": ["b"], "standard": ["b"], "english": ["c.t"]}
