"""`essearch init | status | drop | mappings` through click's CliRunner, against the real node."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from essearch.cli import main


@pytest.fixture
def env(es_url, index_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # away from the checkout: definitions must still resolve
    from essearch.cli._common import console

    monkeypatch.setattr(console, "width", 250)  # no wrapping inside table cells
    return {
        "ESSEARCH_ES_URL": es_url,
        "ESSEARCH_INDEX_NAME": index_name,
        "ESSEARCH_INDEX_REPLICAS": "0",
        "ESSEARCH_EMBEDDER_PROVIDER": "local",
        "ESSEARCH_EMBEDDER_DIMENSIONS": "384",  # known dims: the model is not loaded
    }


def run(env, *args, input=None, **extra_env):
    result = CliRunner().invoke(main, list(args), env={**env, **extra_env}, input=input)
    return result


def test_init_then_rerun_then_changed_definition(env, es_client, index_name):
    first = run(env, "init", "--json")
    assert first.exit_code == 0, first.output
    created = json.loads(first.output)
    assert created["created"] and created["index"] == f"{index_name}-v1"

    again = run(env, "init")
    assert again.exit_code == 0, again.output
    assert "already matches" in again.output

    changed = run(env, "init", ESSEARCH_INDEX_ANALYZER="simple")
    assert changed.exit_code == 1
    assert "nothing was changed" in changed.output
    assert "mappings.properties.text.analyzer" in changed.output
    assert "essearch reindex" in changed.output
    mapping = es_client.indices.get_mapping(index=f"{index_name}-v1").body
    props = mapping[f"{index_name}-v1"]["mappings"]["properties"]
    assert props["text"]["analyzer"] == "standard"


def test_status_json(env, es_client, index_name):
    assert run(env, "init", "--chunk-size", "120", "--chunk-overlap", "10").exit_code == 0
    result = run(env, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["exists"] and not report["mismatch"]
    roles = {a["role"]: a for a in report["aliases"]}
    assert roles["read"]["alias"] == index_name
    assert roles["write"]["alias"] == f"{index_name}-write"
    entry = roles["read"]["indices"][0]
    assert entry["index"] == f"{index_name}-v1"
    assert entry["recorded"]["dims"] == 384
    assert entry["docs"] == 0
    assert (entry["chunking"]["size"], entry["chunking"]["overlap"]) == (120, 10)

    table = run(env, "status")
    assert table.exit_code == 0, table.output
    assert f"{index_name}-v1" in table.output and "120/10 tokens" in table.output

    mismatch = run(env, "status", "--json", ESSEARCH_EMBEDDER_DIMENSIONS="256")
    assert mismatch.exit_code == 0
    assert json.loads(mismatch.output)["mismatch"] is True
    flagged = run(env, "status", ESSEARCH_EMBEDDER_DIMENSIONS="256")
    assert flagged.exit_code == 1
    assert "MISMATCH" in flagged.output


def test_missing_analyzer_is_a_clear_error(env, index_name):
    result = run(env, "init", ESSEARCH_INDEX_ANALYZER="english")
    assert result.exit_code == 1
    assert "analyzer 'english'" in result.output
    assert "it offers:" in result.output
    assert "standard" in result.output


def test_mappings_show_from_any_directory(env):
    result = run(env, "mappings", "show", "--definition", "example-metadata")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["mappings"]["properties"]["vector"]["dims"] == 384
    assert body["mappings"]["properties"]["metadata"]["properties"]["lang"]["type"] == "keyword"
    template = json.loads(run(env, "mappings", "show", "--template").output)
    assert template["index_patterns"] == [f"{env['ESSEARCH_INDEX_NAME']}-v*"]
    names = run(env, "mappings", "list").output
    assert "default" in names and "example-metadata" in names


def test_mappings_show_offline_through_the_installed_command(env, tmp_path):
    """The console script finds the shipped definitions with the cluster unreachable."""
    cmd = [sys.executable, "-m", "essearch", "mappings", "show", "--offline", "--dims", "128"]
    full_env = {**os.environ, **env, "ESSEARCH_ES_URL": "http://127.0.0.1:9"}
    done = subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["mappings"]["properties"]["vector"]["dims"] == 128


def test_drop_asks_and_refuses_aliased_indices(env, es_client, index_name):
    assert run(env, "init").exit_code == 0
    refused = run(env, "drop", "--yes")
    assert refused.exit_code == 1
    assert "refusing" in refused.output and "--force" in refused.output
    assert es_client.indices.exists(index=f"{index_name}-v1")

    declined = run(env, "drop", "--force", input="n\n")
    assert declined.exit_code == 1  # click.Abort
    assert "Delete" in declined.output
    assert es_client.indices.exists(index=f"{index_name}-v1")

    done = run(env, "drop", "--force", input="y\n")
    assert done.exit_code == 0, done.output
    assert not es_client.indices.exists(index=f"{index_name}-v1")
    assert "nothing to drop" in run(env, "drop", "--yes").output
