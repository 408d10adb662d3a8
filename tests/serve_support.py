"""Helpers shared by the serve tests: the corpus, an app on a real node, waiting for readiness."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CORPUS: list[dict[str, Any]] = [
    {
        "id": "d1",
        "title": "knowledge.txt",
        "text": "This is the document for external knowledge.",
        "metadata": {
            "path": "s3://dify/knowledge.txt",
            "description": "dify knowledge document",
            "category": "guide",
            "tags": ["dify", "rag"],
            "year": 2023,
            "published": "2023-05-01",
        },
    },
    {
        "id": "d2",
        "title": "introduce.txt",
        "text": "The Innovation Engine for GenAI Applications",
        "metadata": {
            "path": "s3://dify/introduce.txt",
            "description": "dify introduce",
            "category": "intro",
            "tags": ["dify"],
            "year": 2024,
            "published": "2024-02-10",
        },
    },
    {
        "id": "d3",
        "title": "Solar panels",
        "text": "Solar panel efficiency improves with cooling; the zyxquor coating helps.",
        "metadata": {
            "path": "file:///energy/solar.md",
            "category": "energy",
            "tags": ["solar"],
            "year": 2019,
            "published": "2019-07-01",
        },
    },
    {
        "id": "d4",
        "title": "Cats",
        "text": "Cats often nap on the sofa for hours.",
        "metadata": {
            "path": "file:///pets/cats.md",
            "category": "pets",
            "year": 2021,
            "published": "2021-03-03",
        },
    },
    {
        "id": "d5",
        "title": "Kittens",
        "text": "Kittens like to sleep curled up in warm places.",
        "metadata": {
            "path": "s3://pets/kitten.md",
            "category": "pets",
            "tags": ["cat", "zh"],
            "year": 2022,
            "published": "2022-12-24",
            "lang": "zh",
        },
    },
]


def unique_name(stem: str) -> str:
    return f"t-{stem}-{uuid.uuid4().hex[:8]}"


def cleanup(es_client: Any, prefix: str) -> None:
    indices = es_client.indices.get(index=f"{prefix}*", expand_wildcards="all").body
    for index in indices:
        es_client.indices.delete(index=index, ignore_unavailable=True)
    quiet = es_client.options(ignore_status=404)
    for template in quiet.indices.get_index_template(name=f"{prefix}*").body.get(
        "index_templates", []
    ):
        quiet.indices.delete_index_template(name=template["name"])


def wait_ready(client: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response.json()
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(app: Any, port: int) -> Iterator[str]:
    """A real uvicorn server for `app` on loopback, in a thread; yields its base URL."""
    import httpx
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if not thread.is_alive():
            raise RuntimeError(f"the test server on port {port} stopped while starting")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not become ready")
        time.sleep(0.2)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(15)
