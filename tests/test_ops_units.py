"""Pure parts of the reindex machinery: strategy choice, request bodies, state merging."""

from __future__ import annotations

from essearch.es.capabilities import Capabilities
from essearch.ingest.chunker import Chunk
from essearch.ops.copier import choose_copy_strategy, reindex_body, since_query
from essearch.ops.copier import embed_text_of as embed_text
from essearch.ops.migration_state import STATE_KEY, merged_meta
from essearch.ops.reader import pit_search_body
from essearch.ops.verify import count_mismatches, doc_counts_body

WITH_REINDEX = Capabilities(version="9.1.0", modules=frozenset({"reindex"}))
WITHOUT_REINDEX = Capabilities(version="9.1.0", modules=frozenset({"x-pack-core"}))


def test_server_reindex_only_when_the_module_exists_and_vectors_can_be_copied() -> None:
    assert choose_copy_strategy(WITH_REINDEX, needs_reembed=False) == "server"
    assert choose_copy_strategy(WITH_REINDEX, needs_reembed=True) == "client"
    assert choose_copy_strategy(WITHOUT_REINDEX, needs_reembed=False) == "client"
    assert choose_copy_strategy(None, needs_reembed=False) == "client"


def test_reindex_body_copies_everything_and_tolerates_conflicts() -> None:
    body = reindex_body("docs-v1", "docs-v2", size=200)
    assert body == {
        "conflicts": "proceed",
        "source": {"index": "docs-v1", "size": 200},
        "dest": {"index": "docs-v2", "op_type": "index"},
    }


def test_pit_page_body_sorts_by_shard_doc_and_asks_for_vectors() -> None:
    first = pit_search_body("pit-1", size=10, include_vectors=True)
    assert first["pit"] == {"id": "pit-1", "keep_alive": "5m"}
    assert first["sort"] == [{"_shard_doc": "asc"}]
    assert first["_source"] == {"exclude_vectors": False}
    assert "search_after" not in first and "index" not in first
    later = pit_search_body("pit-2", source=["content_hash"], search_after=[3, 7])
    assert later["_source"] == ["content_hash"] and later["search_after"] == [3, 7]
    both = pit_search_body("p", source=["a"], include_vectors=True, query=since_query("2024"))
    assert both["_source"] == {"exclude_vectors": False, "includes": ["a"]}
    assert both["query"] == {"range": {"indexed_at": {"gte": "2024"}}}


def test_state_update_keeps_the_rest_of_meta() -> None:
    meta = {"essearch": {"embedder": {"dims": 3}}, STATE_KEY: {"status": "copying", "source": "a"}}
    merged = merged_meta(meta, {"status": "swapped", "swapped_at": None})
    assert merged["essearch"] == {"embedder": {"dims": 3}}
    assert merged[STATE_KEY]["status"] == "swapped"
    assert merged[STATE_KEY]["source"] == "a"
    assert "swapped_at" not in merged[STATE_KEY] and "updated_at" in merged[STATE_KEY]
    assert meta[STATE_KEY]["status"] == "copying"  # the input is not changed


def test_reembedded_text_is_what_ingest_embeds() -> None:
    chunk = Chunk(id="d::0::x", doc_id="d", position=0, text="body", title="Title")
    assert embed_text({"title": "Title", "text": "body"}) == chunk.embed_text
    untitled = Chunk(id="d::0::x", doc_id="d", position=0, text="body", title=None)
    assert embed_text({"title": None, "text": "body"}) == untitled.embed_text


def test_count_mismatches_names_each_document() -> None:
    assert count_mismatches({"a": 2, "b": 1}, {"a": 2, "b": 1}) == []
    assert count_mismatches({"a": 2, "b": 1}, {"a": 1, "c": 4}) == [
        ("a", 2, 1),
        ("b", 1, 0),
        ("c", 0, 4),
    ]
    body = doc_counts_body({"doc": "a"}, size=5)
    assert body["aggs"]["docs"]["composite"]["after"] == {"doc": "a"}
    assert body["aggs"]["docs"]["composite"]["size"] == 5
