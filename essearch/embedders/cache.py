"""An on-disk embedding cache (SQLite) that wraps any embedder.

Re-ingesting or reindexing unchanged text costs a lookup instead of a model call. Entries are
keyed by provider, model, dims, normalisation, the prompt and the SHA-256 of the text, so a
changed prompt or model never returns a stale vector. Vectors are stored as float32 bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from essearch.embedders.base import Embedder, EmbedderInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    space TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    dims INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (space, text_sha256)
) WITHOUT ROWID
"""


@dataclass
class CacheStats:
    """Hit/miss counts since the cache was opened (or last `reset`)."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __str__(self) -> str:
        return f"{self.hits} hits, {self.misses} misses ({self.hit_rate:.0%} hit rate)"


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def space_key(info: EmbedderInfo, prompt: str | None) -> str:
    """Identifies one embedding space plus one prompt (hashed to keep the key short)."""
    parts = [info.provider, info.model, str(info.dims), str(info.normalize), prompt or ""]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def pack(vector: list[float]) -> bytes:
    return array("f", vector).tobytes()


def unpack(blob: bytes) -> list[float]:
    values = array("f")
    values.frombytes(blob)
    return values.tolist()


class EmbeddingCache:
    """The SQLite store: `get_many` / `put_many` by (space, text hash); safe across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(SCHEMA)
            self._conn.commit()

    def get_many(self, space: str, hashes: list[str]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT text_sha256, vector FROM embeddings "
                    f"WHERE space = ? AND text_sha256 IN ({marks})",
                    [space, *chunk],
                ).fetchall()
                found.update((digest, unpack(blob)) for digest, blob in rows)
        return found

    def put_many(self, space: str, items: list[tuple[str, list[float]]]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (space, text_sha256, dims, vector) "
                "VALUES (?, ?, ?, ?)",
                [(space, digest, len(vector), pack(vector)) for digest, vector in items],
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            count: int = self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            return count

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedEmbedder(Embedder):
    """Wraps an embedder: looks vectors up first, embeds only the misses, stores them.

    Same `info` as the wrapped embedder (it is the same embedding space). Vectors come back through
    float32 (hit or miss alike), i.e. within ~1e-7 of the wrapped embedder's.
    """

    def __init__(self, embedder: Embedder, path: str | Path | EmbeddingCache) -> None:
        super().__init__(
            embedder.model,
            dims=None,
            normalize=embedder.normalize,
            query_prompt=embedder.query_prompt,
            document_prompt=embedder.document_prompt,
            batch_size=embedder.batch_size,
        )
        self.inner = embedder
        self.provider = embedder.provider
        self.cache = path if isinstance(path, EmbeddingCache) else EmbeddingCache(path)
        self.stats = CacheStats()
        self._stats_lock = threading.Lock()

    # Identity is the wrapped embedder's.
    @property
    def dims(self) -> int:
        return self.inner.dims

    @property
    def similarity(self) -> Any:
        return self.inner.similarity

    @property
    def info(self) -> EmbedderInfo:
        return self.inner.info

    @property
    def hits(self) -> int:
        return self.stats.hits

    @property
    def misses(self) -> int:
        return self.stats.misses

    def _count(self, hits: int, misses: int) -> None:
        with self._stats_lock:
            self.stats.hits += hits
            self.stats.misses += misses

    def _lookup(
        self, texts: list[str], prompt: str | None
    ) -> tuple[str, list[str], dict[str, list[float]], list[int]]:
        self._prepare(texts, None)  # empty-text check with positions, before any lookup
        space = space_key(self.inner.info, prompt)
        hashes = [text_sha256(t) for t in texts]
        found = self.cache.get_many(space, hashes)
        missing = [i for i, h in enumerate(hashes) if h not in found]
        return space, hashes, found, missing

    def _finish(
        self,
        space: str,
        hashes: list[str],
        found: dict[str, list[float]],
        missing: list[int],
        fresh: list[list[float]],
    ) -> list[list[float]]:
        # Round fresh vectors through float32 too, so a hit and a miss return the same numbers.
        new = {hashes[i]: unpack(pack(vector)) for i, vector in zip(missing, fresh, strict=True)}
        if new:
            self.cache.put_many(space, list(new.items()))
        self._count(len(hashes) - len(missing), len(missing))
        return [new[h] if h in new else found[h] for h in hashes]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        space, hashes, found, missing = self._lookup(texts, self.inner.document_prompt)
        fresh = self.inner.embed_documents([texts[i] for i in missing]) if missing else []
        return self._finish(space, hashes, found, missing, fresh)

    def embed_query(self, text: str) -> list[float]:
        space, hashes, found, missing = self._lookup([text], self.inner.query_prompt)
        fresh = [self.inner.embed_query(text)] if missing else []
        return self._finish(space, hashes, found, missing, fresh)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        lookup = await asyncio.to_thread(self._lookup, texts, self.inner.document_prompt)
        space, hashes, found, missing = lookup
        fresh = await self.inner.aembed_documents([texts[i] for i in missing]) if missing else []
        return await asyncio.to_thread(self._finish, space, hashes, found, missing, fresh)

    async def aembed_query(self, text: str) -> list[float]:
        space, hashes, found, missing = await asyncio.to_thread(
            self._lookup, [text], self.inner.query_prompt
        )
        fresh = [await self.inner.aembed_query(text)] if missing else []
        result = await asyncio.to_thread(self._finish, space, hashes, found, missing, fresh)
        return result[0]

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self.inner._embed(texts)

    def close(self) -> None:
        self.inner.close()
        self.cache.close()

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.cache.close()

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, {str(self.cache.path)!r}, {self.stats})"
