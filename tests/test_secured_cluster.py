"""A secured node: HTTPS with a CA made at test time, file-realm users, a read-only user.

Every failure a user meets on a real secured cluster is one line naming what to fix, with no
traceback and no part of a secret: a wrong password, an unknown API key, a missing CA, a pinned
fingerprint, http:// to an HTTPS port, a user without the privileges to write.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from essearch.cli import main
from essearch.es.provision import FileUser, LocalNode, NodeSecurity

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN = FileUser("es_admin", "admin-Pa55word", ("superuser",))
READER = FileUser("reader", "reader-Pa55word", ("essearch_reader",))
WRITER = FileUser("writer", "writer-Pa55word", ("essearch_writer",))
ROLES = """essearch_reader:
  indices:
    - names: ["sec-read*"]
      privileges: ["read", "view_index_metadata"]
essearch_writer:
  indices:
    - names: ["sec-write*"]
      privileges: ["read", "write", "view_index_metadata", "maintenance"]
"""
SAMPLE = Path(__file__).parent.parent / "essearch" / "data" / "sample_corpus.jsonl"


@pytest.fixture(scope="module")
def secured_node():
    node = LocalNode(
        heap_mb=384, security=NodeSecurity(users=(ADMIN, READER, WRITER), roles_yml=ROLES)
    )
    try:
        node.start()
    except BaseException:
        node.close()
        raise
    yield node
    node.close()


@pytest.fixture(scope="module")
def read_index(secured_node) -> str:
    return f"sec-read-{uuid.uuid4().hex[:8]}"


def run(env: dict[str, str | None], *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def base_env(
    node: LocalNode, user: FileUser | None = ADMIN, **extra: str | None
) -> dict[str, str | None]:
    """The CLI's environment for this node (None unsets a variable)."""
    env: dict[str, str | None] = {
        "ESSEARCH_ES_URL": node.url,
        "ESSEARCH_ES_CA_CERTS": str(node.ca_certs),
        "ESSEARCH_ES_USERNAME": user.name if user else None,
        "ESSEARCH_ES_PASSWORD": user.password if user else None,
        "ESSEARCH_ES_API_KEY": None,
        "ESSEARCH_ES_SSL_ASSERT_FINGERPRINT": None,
        "ESSEARCH_INDEX_REPLICAS": "0",
    }
    env.update(extra)
    return env


def one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_basic_auth_and_ca_bundle_init_ingest_every_mode(secured_node, read_index):
    env = base_env(secured_node, ESSEARCH_INDEX_NAME=read_index)
    assert run(env, "init").exit_code == 0
    ingest = run(env, "ingest", str(SAMPLE), "--json", "-q", "--dead-letter", "/dev/null")
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.output)["failed"] == 0
    for mode in ("bm25", "knn", "hybrid"):
        found = run(env, "search", "vector embeddings", "--mode", mode, "--json")
        assert found.exit_code == 0, found.output
        assert json.loads(found.output)["hits"], (mode, found.output)


def test_wrong_password_names_the_user_not_the_password(secured_node):
    env = base_env(secured_node, FileUser("es_admin", "Wrong-Pa55-xyz", ()))
    line = one_line(run(env, "search", "x"))
    assert "401" in line and "user 'es_admin'" in line and "Wrong-Pa55-xyz" not in line


def test_unknown_api_key_is_a_clean_401(secured_node):
    key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    env = base_env(secured_node, None, ESSEARCH_ES_API_KEY=key)
    line = one_line(run(env, "search", "x"))
    assert "401" in line and "API key" in line and key not in line and key[-6:] not in line
    doctor = run(env, "doctor", "--json")
    assert key[-4:] not in doctor.output and "**********" in doctor.output


def test_tls_without_the_ca_is_refused_once_with_a_fix(secured_node):
    env = base_env(secured_node, ESSEARCH_ES_CA_CERTS=None)
    started = time.monotonic()
    line = one_line(run(env, "search", "x"))
    assert time.monotonic() - started < 20
    assert "ESSEARCH_ES_CA_CERTS" in line and "not trusted" in line
    verbose = run(env, "-v", "search", "x").output  # the transport's log: one attempt, no retry
    assert verbose.count("GET https://") == 1 and "Retrying" not in verbose, verbose


def test_http_to_the_https_port_says_use_https(secured_node):
    env = base_env(secured_node)
    env["ESSEARCH_ES_URL"] = secured_node.url.replace("https://", "http://")
    line = one_line(run(env, "search", "x"))
    assert "https://" in line


def _fingerprint(node: LocalNode) -> str:
    pem = ssl.get_server_certificate(("127.0.0.1", node.http_port))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def test_fingerprint_in_the_forms_people_paste(secured_node):
    digest = _fingerprint(secured_node)
    colons = ":".join(digest[i : i + 2] for i in range(0, 64, 2)).upper()
    for pasted in (colons, digest.lower()):
        env = base_env(secured_node, ESSEARCH_ES_CA_CERTS=None)
        env["ESSEARCH_ES_SSL_ASSERT_FINGERPRINT"] = pasted
        result = run(env, "doctor", "--json")
        assert result.exit_code == 0, result.output
    env["ESSEARCH_ES_SSL_ASSERT_FINGERPRINT"] = colons[:-3]
    bad = run(env, "search", "x")  # the settings error: a heading and one line per bad field
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "ESSEARCH_ES_SSL_ASSERT_FINGERPRINT" in bad.output and "64 hex digits" in bad.output
    env["ESSEARCH_ES_SSL_ASSERT_FINGERPRINT"] = "ab" * 32
    line = one_line(run(env, "search", "x"))
    assert "does not match" in line


def test_read_only_user_searches_but_may_not_write(secured_node, read_index):
    admin = base_env(secured_node, ESSEARCH_INDEX_NAME=read_index)
    if run(admin, "status", "--json").exit_code != 0:  # this test alone: fill the index first
        assert run(admin, "init").exit_code == 0
        assert run(admin, "ingest", str(SAMPLE), "-q", "--dead-letter", "/dev/null").exit_code == 0
    env = base_env(secured_node, READER, ESSEARCH_INDEX_NAME=read_index)
    found = run(env, "search", "vector embeddings", "--mode", "hybrid", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["hits"]
    doctor = run(env, "doctor")
    assert doctor.exit_code == 0, doctor.output
    assert "monitor" in doctor.output and "assuming" in doctor.output
    for command in (["init"], ["ingest", str(SAMPLE), "-q"]):
        line = one_line(run(env, *command))
        assert "user 'reader'" in line and "privilege" in line and "write" in line, line
        assert READER.password not in line


def test_a_writer_fills_an_index_an_operator_made_and_gives_it_the_source_field(
    secured_node, tmp_path
):
    """An operator made the index (before chunks recorded their input, so without `source`); a
    writer with `write` but no `create_index`, `manage` or `monitor` ingests into it, the field
    is added in place (write covers a mapping update), and `--sync` works for that writer."""
    from essearch.embedders.local import LocalEmbedder
    from essearch.es import make_client
    from essearch.index import IndexManager
    from essearch.settings import Settings

    name = f"sec-write-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        es={"url": secured_node.url, "ca_certs": str(secured_node.ca_certs),
            "username": ADMIN.name, "password": ADMIN.password},
        index={"name": name, "replicas": 0},
    )  # fmt: skip
    client = make_client(settings)
    try:
        body = IndexManager(client, settings, LocalEmbedder().info).render_body(1)
        body["mappings"]["properties"].pop("source")  # the layout before the field existed
        client.indices.create(
            index=f"{name}-v1",
            settings=body["settings"],
            mappings=body["mappings"],
            aliases={name: {}, f"{name}-write": {"is_write_index": True}},
        )
        writer = base_env(secured_node, WRITER, ESSEARCH_INDEX_NAME=name)
        dead = str(tmp_path / "dead.jsonl")
        done = run(writer, "ingest", str(SAMPLE), "-q", "--dead-letter", dead)
        assert done.exit_code == 0, done.output
        mapping = client.indices.get_mapping(index=name).body[f"{name}-v1"]["mappings"]
        assert mapping["properties"]["source"] == {"type": "keyword"}
        client.indices.refresh(index=name)
        hit = client.search(index=name, size=1)["hits"]["hits"][0]["_source"]
        assert hit["source"] == SAMPLE.resolve().as_posix()
        synced = run(writer, "ingest", str(SAMPLE), "-q", "--sync", "--json", "--dead-letter", dead)
        assert synced.exit_code == 0, synced.output
        assert json.loads(synced.stdout)["sync_deleted"] == []
    finally:
        client.indices.delete(index=f"{name}-v1", ignore_unavailable=True)
        client.close()
