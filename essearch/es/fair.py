"""Fair admission to a client's connection pool, for threads and for asyncio tasks.

Neither pool under the Elasticsearch client hands a freed connection to the caller that waited
longest: urllib3's blocking queue and aiohttp's connector both let the caller that just freed one
take it straight back. A caller that starts its next search as soon as one returns (a thread pool
of a web app, a worker loop, a load test, an evaluation with N workers) so keeps its connection,
and with more callers than connections the others wait until their request times out: 32 such
callers on the default 10 connections left 22 of them with no answer for a whole 12-15 s run,
threads and tasks alike (`benchmarks/bench_pool_fairness.py`). The transports in `client.py` put a
gate as wide as the pool in front of it, which admits callers in arrival order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any


def pool_capacity(nodes: Iterable[Any]) -> int:
    """Connections the pool may open at once: `connections_per_node` summed over its nodes."""
    width: int = sum(node.config.connections_per_node for node in nodes)
    return max(1, width)


class ThreadGate:
    """A FIFO semaphore for threads: a freed slot goes to the longest waiter, never back to the
    thread that freed it (`threading.Semaphore` lets that thread barge in first)."""

    def __init__(self, width: int) -> None:
        self._free = width
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def __enter__(self) -> ThreadGate:
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return self
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        try:
            turn.acquire()  # released by the thread that hands its slot over
        except BaseException:  # interrupted while waiting (Ctrl-C in the main thread)
            with self._lock:
                if turn in self._waiters:
                    self._waiters.remove(turn)
                    raise
            self._hand_on()  # the slot arrived as we were interrupted: pass it on
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._hand_on()

    def _hand_on(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()  # the slot passes on, still taken
            else:
                self._free += 1
