"""The client's version handshake, unsupported servers, restricted users and error lines.

A local HTTP server speaks the parts of the Elasticsearch REST API the handshake uses (and the
answers of servers essearch does not support); the same code paths run on real 8.x and 9.x nodes
in the integration suite.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from essearch.cli import main
from essearch.errors import ClusterConnectionError
from essearch.es import make_async_client, make_client, probe
from essearch.es.client import UnsupportedServerError, with_compat_headers
from essearch.es.health import describe_cluster_error, preflight
from essearch.logs import RedactSecrets, level_from
from essearch.settings import Settings, load_settings

ES = {"X-Elastic-Product": "Elasticsearch"}


@pytest.fixture(autouse=True)
def quiet_test_server():
    """The local test server's own request log is not essearch's output."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)


def _nodes(version: str) -> dict:
    return {"nodes": {"n1": {"version": version, "build_flavor": "default"}}}


class FakeCluster:
    """Records the headers of every request; answers like a server of `version`."""

    def __init__(self, server: HTTPServer, version: str, product: str | None = "Elasticsearch"):
        self.seen: list[tuple[str, str, str]] = []
        headers = {"X-Elastic-Product": product} if product else {}
        self.headers = headers

        def handler(request: Request) -> Response:
            self.seen.append(
                (
                    request.path,
                    request.headers.get("Accept", ""),
                    request.headers.get("Content-Type", ""),
                )
            )
            if request.path == "/_nodes/_local":
                body = _nodes(version)
            elif request.path == "/_bulk":
                body = {"errors": False, "took": 1, "items": []}
            else:
                body = {"status": "green", "cluster_name": "fake"}
            return Response(json.dumps(body), headers=headers, content_type="application/json")

        server.expect_request("/_nodes/_local").respond_with_handler(handler)
        server.expect_request("/_cluster/health").respond_with_handler(handler)
        server.expect_request("/_bulk", method="PUT").respond_with_handler(handler)
        server.expect_request("/_bulk", method="POST").respond_with_handler(handler)


@pytest.mark.parametrize("version,major", [("8.19.9", 8), ("8.11.4", 8), ("9.5.4", 9)])
def test_compat_header_follows_the_server_major(httpserver: HTTPServer, version, major):
    fake = FakeCluster(httpserver, version)
    with make_client(Settings(es={"url": httpserver.url_for("/").rstrip("/")})) as client:
        client.cluster.health()
        client.bulk(operations=[{"index": {"_index": "x"}}, {"a": 1}])
        assert client.transport.server_version == version
    first, health, bulk = fake.seen
    assert first[0] == "/_nodes/_local" and "compatible-with" not in first[1]
    assert health[1] == f"application/vnd.elasticsearch+json; compatible-with={major}"
    assert bulk[2] == f"application/vnd.elasticsearch+x-ndjson; compatible-with={major}"


async def test_async_client_takes_the_same_path(httpserver: HTTPServer):
    fake = FakeCluster(httpserver, "8.19.9")
    client = make_async_client(
        Settings(es={"url": httpserver.url_for("/").rstrip("/")}), node_class="httpxasync"
    )
    try:
        await client.cluster.health()
        await client.cluster.health()
    finally:
        await client.close()
    assert [s[0] for s in fake.seen] == ["/_nodes/_local", "/_cluster/health", "/_cluster/health"]
    assert fake.seen[1][1].endswith("compatible-with=8")


@pytest.mark.parametrize(
    "version,product,expected",
    [
        ("7.17.25", "Elasticsearch", "is version 7.17.25; essearch needs Elasticsearch 8.11"),
        ("8.10.4", "Elasticsearch", "is version 8.10.4; essearch needs Elasticsearch 8.11"),
        ("2.11.1", None, "is not Elasticsearch (version 2.11.1; OpenSearch?)"),
        ("10.0.0", "Elasticsearch", "is version 10.0.0"),
    ],
)
def test_unsupported_servers_get_one_line(httpserver: HTTPServer, version, product, expected):
    fake = FakeCluster(httpserver, version, product)
    url = httpserver.url_for("/").rstrip("/")
    with (
        make_client(Settings(es={"url": url})) as client,
        pytest.raises(UnsupportedServerError) as info,
    ):
        client.cluster.health()
    assert expected in str(info.value) and url in str(info.value)
    assert "9.x" in str(info.value)
    assert [s[0] for s in fake.seen] == ["/_nodes/_local"]  # no real request was sent


def test_doctor_on_an_unsupported_version_is_one_line(httpserver: HTTPServer, monkeypatch):
    FakeCluster(httpserver, "7.17.25")
    monkeypatch.setenv("ESSEARCH_ES_URL", httpserver.url_for("/").rstrip("/"))
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "7.17.25" in lines[0] and "8.11" in lines[0], result.output
    assert "Traceback" not in result.output


def test_search_on_an_unsupported_version_is_one_line(httpserver: HTTPServer, monkeypatch):
    FakeCluster(httpserver, "8.10.4")
    httpserver.expect_request("/_security/_authenticate").respond_with_json({}, headers=ES)
    monkeypatch.setenv("ESSEARCH_ES_URL", httpserver.url_for("/").rstrip("/"))
    result = CliRunner().invoke(main, ["search", "refunds"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error:") and "8.10.4" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_without_monitor_the_probe_assumes_safely(httpserver: HTTPServer):
    """A read-only user: `_nodes` and `_license` answer 403; requests go as plain JSON."""
    denied = {
        "error": {
            "type": "security_exception",
            "reason": "action [cluster:monitor/nodes/info] is unauthorized for user [reader] "
            "with effective roles [reader], this action is granted by the cluster privileges "
            "[monitor,manage,all]",
        },
        "status": 403,
    }
    seen: list[str] = []

    def forbidden(request: Request) -> Response:
        seen.append(request.headers.get("Accept", ""))
        return Response(json.dumps(denied), status=403, headers=ES, content_type="application/json")

    httpserver.expect_request("/_nodes/_local").respond_with_handler(forbidden)
    httpserver.expect_request("/_nodes/plugins").respond_with_handler(forbidden)
    url = httpserver.url_for("/").rstrip("/")
    with make_client(Settings(es={"url": url})) as client:
        caps = probe(client)
    assert caps.version == "8.11.0" and caps.license_type == "unknown"
    assert "monitor" in caps.limited and not caps.reindex and not caps.rescore_vector
    assert seen[1] == "application/json"  # no compat header: every server reads it
    with make_client(Settings(es={"url": url})) as client:
        from elasticsearch import AuthorizationException

        with pytest.raises(AuthorizationException) as info:
            client.nodes.info(metric="plugins")
    line = describe_cluster_error(
        info.value, Settings(es={"url": url, "username": "reader", "password": "pw-xyz"})
    )
    assert "user 'reader'" in line and "missing cluster privilege" in line
    assert "monitor" in line and "pw-xyz" not in line


def test_wrong_password_line_names_the_user_not_the_password(httpserver: HTTPServer, monkeypatch):
    unauthorized = {"error": {"type": "security_exception", "reason": "unable to authenticate"}}
    for path in ("/_nodes/_local", "/_security/_authenticate"):
        httpserver.expect_request(path).respond_with_json(unauthorized, status=401, headers=ES)
    monkeypatch.setenv("ESSEARCH_ES_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("ESSEARCH_ES_USERNAME", "alice")
    monkeypatch.setenv("ESSEARCH_ES_PASSWORD", "s3cret-Pa55")
    monkeypatch.setenv("ESSEARCH_LOG_LEVEL", "DEBUG")
    result = CliRunner().invoke(main, ["-vv", "search", "refunds"])
    assert result.exit_code == 1
    assert "user 'alice'" in result.output and "401" in result.output
    encoded = base64.b64encode(b"alice:s3cret-Pa55").decode()
    assert "s3cret-Pa55" not in result.output and encoded not in result.output


def test_debug_logging_shows_no_secret():
    """Whatever a library logs at DEBUG passes the redacting filter first."""
    import io

    from essearch.logs import configure_logging

    password, key = "hunter2-password", "ZW5jb2RlZC1hcGkta2V5"
    out = io.StringIO()
    configure_logging(2, None, [password, key, f"bob:{password}"], stream=out)
    try:
        log = logging.getLogger("elastic_transport.transport")
        token = base64.b64encode(f"bob:{password}".encode()).decode()
        log.debug("> Authorization: Basic %s", token)
        log.debug("> Authorization: ApiKey %s", key)
        try:
            raise RuntimeError(f"boom with {password}")
        except RuntimeError:
            log.debug("failed", exc_info=True)
    finally:
        configure_logging(0, None)
    err = out.getvalue()
    assert "Authorization: Basic **********" in err and "boom with **********" in err
    assert password not in err and key not in err and token not in err


def test_transport_retry_warnings_stay_quiet_unless_verbose():
    from essearch.logs import configure_logging

    configure_logging(0, "WARNING")
    assert not logging.getLogger("elastic_transport.transport").isEnabledFor(logging.WARNING)
    configure_logging(1, None)
    assert logging.getLogger("elastic_transport.transport").isEnabledFor(logging.WARNING)
    configure_logging(0, None)


@pytest.mark.parametrize(
    "verbose,configured,level",
    [(0, None, logging.WARNING), (0, "debug", logging.DEBUG), (0, "INFO", logging.INFO),
     (1, "ERROR", logging.INFO), (2, None, logging.DEBUG), (0, "15", 15)],
)  # fmt: skip
def test_log_level_comes_from_the_setting_or_v(verbose, configured, level):
    assert level_from(verbose, configured) == level


def test_log_level_setting_configures_the_cli(monkeypatch):
    monkeypatch.setenv("ESSEARCH_LOG_LEVEL", "INFO")
    CliRunner().invoke(main, ["mappings", "list"])
    assert logging.getLogger().level == logging.INFO
    monkeypatch.setenv("ESSEARCH_LOG_LEVEL", "WARNING")
    CliRunner().invoke(main, ["mappings", "list"])
    assert logging.getLogger().level == logging.WARNING


def test_redaction_covers_base64_forms():
    flt = RedactSecrets(["abc:def-123"])
    assert flt.scrub("x " + base64.b64encode(b"abc:def-123").decode()) == "x **********"


def test_compat_rewrite_shapes():
    headers = {
        "accept": "application/vnd.elasticsearch+json; compatible-with=9",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
    }
    assert with_compat_headers(headers, 8)["accept"].endswith("compatible-with=8")
    plain = with_compat_headers(headers, None)
    assert plain["accept"] == "application/json"
    assert plain["content-type"] == "application/x-ndjson"


@pytest.mark.parametrize(
    "pasted",
    [
        "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
        " ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67 89 "
        "ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67 89 ",
    ],
)  # fmt: skip
def test_fingerprint_forms_people_paste(pasted):
    es = Settings(es={"ssl_assert_fingerprint": pasted}).es
    assert es.ssl_assert_fingerprint == "abcdef0123456789" * 4


def test_fingerprint_of_the_wrong_length_is_a_clear_error(monkeypatch):
    from essearch.errors import ConfigurationError

    monkeypatch.setenv("ESSEARCH_ES_SSL_ASSERT_FINGERPRINT", "AB:CD:EF")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "ESSEARCH_ES_SSL_ASSERT_FINGERPRINT" in str(info.value)
    assert "64 hex digits" in str(info.value) and "got 6" in str(info.value)


def test_unreachable_preflight_is_fast_and_one_line():
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ClusterConnectionError) as info:
            preflight(Settings(es={"url": url, "max_retries": 3}))
    assert time.monotonic() - started < 5
    assert str(info.value) == (
        f"cannot reach Elasticsearch at {url}: connection refused (is it running, and on that "
        "port?)"
    )


def test_ingest_against_a_dead_port_fails_before_loading_a_model(tmp_path, monkeypatch):
    import socket
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ESSEARCH_ES_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")
        corpus = tmp_path / "c.jsonl"
        corpus.write_text('{"id": "1", "text": "hello"}\n')
        sys.modules.pop("sentence_transformers", None)
        result = CliRunner().invoke(main, ["ingest", str(corpus)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "connection refused" in result.output
    assert "sentence_transformers" not in sys.modules


def test_https_to_a_plain_http_port_says_so(httpserver: HTTPServer, monkeypatch):
    url = httpserver.url_for("/").rstrip("/").replace("http://", "https://")
    monkeypatch.setenv("ESSEARCH_ES_URL", url)
    result = CliRunner().invoke(main, ["search", "refunds"])
    assert result.exit_code == 1
    assert "probably plain HTTP" in result.output and "use http://" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_probe_waits_for_the_licence_of_a_node_still_starting(httpserver: HTTPServer):
    """A node that has just formed its cluster answers 404 for `_license` for a moment: the
    probe waits for the self-generated licence instead of reporting (and caching) 'none'."""
    answers = iter([404, 404])

    def licence(request: Request) -> Response:
        status = next(answers, 200)
        body = {"license": {"type": "basic", "status": "active"}} if status == 200 else {}
        return Response(
            json.dumps(body), status=status, headers=ES, content_type="application/json"
        )

    nodes = {
        "cluster_name": "fake",
        "nodes": {"n1": {"version": "8.19.9", "modules": [{"name": "x-pack-core"}]}},
    }
    httpserver.expect_request("/_nodes/_local").respond_with_json(_nodes("8.19.9"), headers=ES)
    httpserver.expect_request("/_nodes/plugins").respond_with_json(nodes, headers=ES)
    httpserver.expect_request("/_license").respond_with_handler(licence)
    with make_client(Settings(es={"url": httpserver.url_for("/").rstrip("/")})) as client:
        caps = probe(client)
        assert caps.license_type == "basic" and caps.version == "8.19.9"
        assert next(answers, "used") == "used"  # both 404s were seen, then the licence


def test_the_async_gate_is_as_wide_as_the_pool():
    from essearch.es.fair import pool_capacity

    hosts = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]
    client = make_async_client(Settings(es={"url": hosts}), connections_per_node=4)
    assert pool_capacity(client.transport.node_pool.all()) == 12


async def test_async_callers_in_a_tight_loop_all_get_answers(es_url):
    """More tasks than connections, each starting its next request as soon as one returns: every
    task gets its share (aiohttp alone hands freed connections to the task that just freed them,
    and the other tasks wait for the whole run)."""
    narrow = make_async_client(
        Settings(es={"url": es_url, "request_timeout": 60}), connections_per_node=2
    )
    workers, total = 8, 240
    done = [0] * workers

    async def worker(i: int) -> None:
        while sum(done) < total:
            await narrow.cluster.health()
            done[i] += 1

    try:
        await asyncio.gather(*(worker(i) for i in range(workers)))
    finally:
        await narrow.close()
    # a fair share is 30 each; a starved task would have answered at most once, at the very end
    assert min(done) >= 10, done


def test_threads_in_a_tight_loop_all_get_answers(es_url):
    """The same for the sync client and threads (urllib3's pool is not fair either)."""
    narrow = make_client(
        Settings(es={"url": es_url, "request_timeout": 60}), connections_per_node=2
    )
    workers, total = 8, 240
    done = [0] * workers

    def worker(i: int) -> None:
        while sum(done) < total:
            narrow.cluster.health()
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        narrow.close()
    assert min(done) >= 10, done


def test_the_thread_gate_admits_waiters_in_arrival_order():
    from essearch.es.fair import ThreadGate

    gate = ThreadGate(1)
    order: list[int] = []

    def wait_turn(i: int) -> None:
        with gate:
            order.append(i)

    threads = []
    with gate:  # the one slot is taken: each thread queues, in the order started
        for i in range(5):
            thread = threading.Thread(target=wait_turn, args=(i,))
            thread.start()
            threads.append(thread)
            for _ in range(2000):  # at most 10 s for the thread to queue
                if len(gate._waiters) == i + 1:
                    break
                threading.Event().wait(0.005)
            assert len(gate._waiters) == i + 1
        order.append(-1)
    for thread in threads:
        thread.join(10)
    assert order == [-1, 0, 1, 2, 3, 4]
    assert gate._free == 1 and not gate._waiters  # the width is intact afterwards
