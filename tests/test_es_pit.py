"""The one point-in-time pager (`essearch.es.pit`), against a real node."""

from __future__ import annotations

from elasticsearch import NotFoundError, helpers

from essearch.es.pit import PitCursor, apit_pages, pit_pages


def test_cursor_carries_the_pit_id_and_sort_values_forward() -> None:
    cursor = PitCursor("pit-1", "1m")
    first = cursor.request({"size": 2, "query": {"match_all": {}}})
    assert first["pit"] == {"id": "pit-1", "keep_alive": "1m"} and "search_after" not in first
    cursor.advance(first, {"pit_id": "pit-2", "hits": {"hits": [{"sort": [1]}, {"sort": [5]}]}})
    second = cursor.request({"size": 2})
    assert second["pit"]["id"] == "pit-2" and second["search_after"] == [5]
    assert not cursor.finished
    cursor.advance(second, {"hits": {"hits": [{"sort": [9]}]}})
    assert cursor.finished and cursor.pit_id == "pit-2"


def _corpus(es_client, index_name: str, n: int) -> None:
    es_client.indices.create(index=index_name, mappings={"properties": {"n": {"type": "integer"}}})
    helpers.bulk(
        es_client, ({"_index": index_name, "_id": str(i), "n": i} for i in range(n)), refresh=True
    )


def _is_closed(es_client, pit_id: str) -> bool:
    """A closed PIT is gone: searching it is a 404 (the node is shared, so no global counts)."""
    try:
        es_client.search(body={"pit": {"id": pit_id}, "size": 0})
    except NotFoundError:
        return True
    return False


def test_every_document_once_over_pages_and_the_pit_is_closed(es_client, index_name) -> None:
    _corpus(es_client, index_name, 23)
    body = {"size": 5, "sort": [{"_shard_doc": "asc"}], "track_total_hits": False}
    responses = list(pit_pages(es_client, index_name, body))
    pages = [r["hits"]["hits"] for r in responses]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert sorted(int(h["_id"]) for p in pages for h in p) == list(range(23))
    assert _is_closed(es_client, responses[-1]["pit_id"])


def test_a_caller_that_stops_early_closes_the_pit(es_client, index_name) -> None:
    _corpus(es_client, index_name, 12)
    sizes = iter([2, 3, 100])  # a body per page, as the RAGFlow store's deep pages use
    pages = pit_pages(es_client, index_name, lambda: {"size": next(sizes), "sort": ["_shard_doc"]})
    assert len(next(pages)["hits"]["hits"]) == 2
    second = next(pages)
    assert len(second["hits"]["hits"]) == 3
    assert not _is_closed(es_client, second["pit_id"])
    pages.close()
    assert _is_closed(es_client, second["pit_id"])


async def test_async_pages_match_sync(es_client, es_async_client, index_name) -> None:
    _corpus(es_client, index_name, 9)
    body = {"size": 4, "sort": [{"n": "asc"}], "track_total_hits": False}
    expected = [h["_id"] for r in pit_pages(es_client, index_name, body) for h in r["hits"]["hits"]]
    got = [
        h["_id"]
        async for r in apit_pages(es_async_client, index_name, body)
        for h in r["hits"]["hits"]
    ]
    assert got == expected == [str(i) for i in range(9)]
