"""`ordered_map`: run a function over items on up to N threads, results in input order.

Remote embedders spend their time waiting on the server, so ingest and reindex keep up to
`embedder.concurrency` batches in flight (each with its own retries) instead of one; local models
keep concurrency 1 and use their own intra-op threads instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Sequence[T], concurrency: int) -> list[R]:
    """`[fn(item) for item in items]` with at most `concurrency` calls running at once.

    The first failure (in input order) is raised once the calls already running have ended;
    calls not yet started are cancelled, so a dead backend is not sent the rest of the batches.
    """
    workers = min(max(1, concurrency), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="essearch-embed") as pool:
        futures: list[Future[R]] = [pool.submit(fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
