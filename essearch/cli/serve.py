"""`essearch serve`: the HTTP service (FastAPI on uvicorn); the app lives in `essearch.serve`."""

from __future__ import annotations

import ipaddress
import os
import tempfile

import click

from essearch.cli._common import get_settings

#: Idle keep-alive connections are closed after this long. Longer than the idle expiry of the
#: clients' pools (httpx, which Dify uses, drops its own after 5 s: uvicorn's default, also 5 s,
#: races it, and a request sent on a connection the server is closing gets a reset). nginx's value.
KEEP_ALIVE_S = 75


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", help="Address to listen on (default ESSEARCH_SERVE_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default 8080).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve search over HTTP: /v1 API, Dify's /retrieval, /metrics, playground at /."""
    settings = get_settings()
    host = host or settings.serve.host
    port = port or settings.serve.port
    workers = workers or settings.serve.workers
    try:
        import uvicorn

        import essearch.serve  # noqa: F401 - fails here when the serve extra is missing
    except ImportError as exc:
        raise click.ClickException(
            f"{exc.name} is not installed; install the serve extra: pip install 'essearch[serve]'"
        ) from None
    keys = settings.serve.api_keys
    if not keys and not is_loopback(host):
        raise click.ClickException(
            f"no API keys configured (ESSEARCH_SERVE_API_KEYS): refusing to listen on {host}; "
            "set keys, or listen on loopback (--host 127.0.0.1)"
        )
    served = ", ".join(settings.serve.indices or [settings.index.name])
    click.echo(f"essearch serve: http://{host}:{port} (indices: {served})", err=True)
    if keys:
        click.echo(f"auth: {len(keys)} API key(s) configured; Bearer required", err=True)
    else:
        click.echo(
            "auth: no API keys configured (ESSEARCH_SERVE_API_KEYS), so listening on loopback "
            "only and not checking requests",
            err=True,
        )
    log_level = settings.log_level.lower()
    if workers > 1:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="essearch-prom-"))
        uvicorn.run(
            "essearch.serve.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    else:
        from essearch.serve import create_app

        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            timeout_keep_alive=KEEP_ALIVE_S,
        )


COMMANDS = [serve]
