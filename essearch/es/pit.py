"""Reading past the 10,000-hit window: a point in time (PIT) and `search_after`, the one pager.

Every deep read in essearch goes through here: migrations (`ops/reader.py`), `scan()` of the
sync and async search clients, and the RAGFlow store's full scans and deep pages. A PIT works on
every distribution and licence (no scroll contexts, no `_reindex`) and reads one consistent
snapshot. The request bodies stay with their callers; this module adds the PIT, carries
`search_after` and the PIT id (which may change between pages) forward, and always closes the PIT.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

log = logging.getLogger(__name__)

#: A page's body (without `pit` and `search_after`), or a function that gives the next one (for
#: callers whose pages differ, such as the RAGFlow store's skip-then-read deep pages).
PageBody = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


@dataclass
class PitCursor:
    """Where a PIT walk stands: the PIT id to send and the sort values to continue after."""

    pit_id: str
    keep_alive: str
    search_after: list[Any] | None = None
    finished: bool = False

    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`body` with this cursor's PIT and `search_after` (the PIT names the index)."""
        request = {**body, "pit": {"id": self.pit_id, "keep_alive": self.keep_alive}}
        if self.search_after is not None:
            request["search_after"] = self.search_after
        return request

    def advance(self, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Move past `response`; finished once a page comes back short (or empty)."""
        self.pit_id = response.get("pit_id", self.pit_id)
        hits = response["hits"]["hits"]
        if hits:
            self.search_after = hits[-1]["sort"]
        self.finished = not hits or len(hits) < int(request.get("size", 10))


def _next_body(body: PageBody) -> Mapping[str, Any]:
    return body() if callable(body) else body


def pit_pages(
    client: Elasticsearch, index: str | list[str], body: PageBody, *, keep_alive: str = "1m"
) -> Iterator[dict[str, Any]]:
    """The responses of a PIT walk over `index`, page after page; the PIT is closed at the end,
    also when the caller stops early or an error (often the node going away) ends the walk."""
    cursor = PitCursor(
        client.open_point_in_time(index=index, keep_alive=keep_alive)["id"], keep_alive
    )
    try:
        while not cursor.finished:
            request = cursor.request(_next_body(body))
            response = client.search(body=request).body
            cursor.advance(request, response)
            yield response
    finally:
        try:
            client.close_point_in_time(id=cursor.pit_id)
        except Exception:  # it expires by itself; the node may be gone
            log.debug("closing point in time failed", exc_info=True)


async def apit_pages(
    client: AsyncElasticsearch,
    index: str | list[str],
    body: PageBody,
    *,
    keep_alive: str = "1m",
) -> AsyncGenerator[dict[str, Any], None]:
    """`pit_pages` for the async client."""
    opened = await client.open_point_in_time(index=index, keep_alive=keep_alive)
    cursor = PitCursor(opened["id"], keep_alive)
    try:
        while not cursor.finished:
            request = cursor.request(_next_body(body))
            response = (await client.search(body=request)).body
            cursor.advance(request, response)
            yield response
    finally:
        try:
            await client.close_point_in_time(id=cursor.pit_id)
        except Exception:  # it expires by itself; the node may be gone
            log.debug("closing point in time failed", exc_info=True)


__all__ = ["PageBody", "PitCursor", "apit_pages", "pit_pages"]
