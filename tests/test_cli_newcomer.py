"""The newcomer's path through the CLI (click's CliRunner): one line and a non-zero exit for every
user error, `--index` on every index command, counts that say what they count, fast start."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from essearch.cli import main
from essearch.embedders.local import LocalEmbedder

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "essearch" / "data" / "sample_corpus.jsonl"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("ESSEARCH_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env
    import essearch.cli._common as common

    monkeypatch.setattr(common, "_warned_variables", False)
    monkeypatch.setattr(common.console, "width", 250)


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything loads the local model."""

    def refuse(self):
        raise AssertionError("the local model was loaded")

    monkeypatch.setattr(LocalEmbedder, "_load", refuse)


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(main, list(args), env=env or {}, input=input)


def one_line_error(result) -> str:
    """The user-error contract: non-zero exit, no traceback, one `error:` line naming the input."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert errors, result.output
    return result.output


# -- 1. no tracebacks for user errors ------------------------------------------------------------
def test_missing_file_is_one_line_before_the_model_loads(no_model):
    out = one_line_error(invoke("ingest", "nonexistent.jsonl"))
    assert "'nonexistent.jsonl' does not exist" in out
    assert "run the same command again" not in out


def test_missing_directory_gives_no_resume_advice(no_model, tmp_path):
    out = one_line_error(invoke("ingest", str(tmp_path / "no-such-dir"), "--glob", "**/*.md"))
    assert "no-such-dir" in out and "does not exist" in out
    assert "run the same command again" not in out


def test_unreadable_file_is_named(no_model, tmp_path, monkeypatch):
    secret = tmp_path / "locked.jsonl"
    secret.write_text('{"id": 1, "text": "x"}\n')
    real_access = os.access
    # Root reads every file whatever its mode, so the permission answer is made here.
    monkeypatch.setattr(
        os, "access", lambda p, m: False if Path(p) == secret else real_access(p, m)
    )
    out = one_line_error(invoke("ingest", str(secret)))
    assert "locked.jsonl" in out and "not readable" in out


def test_library_ingest_refuses_a_missing_path_before_loading(no_model, tmp_path):
    from essearch.errors import ConfigurationError
    from essearch.ingest import ingest
    from essearch.settings import Settings

    with pytest.raises(ConfigurationError, match="does not exist"):
        ingest(tmp_path / "missing", settings=Settings(es={"url": "http://127.0.0.1:9"}))


def test_bad_filter_is_refused_before_any_request(no_model, httpserver):
    env = {"ESSEARCH_ES_URL": httpserver.url_for("/").rstrip("/")}
    out = one_line_error(invoke("search", "refunds", "-f", "year>>2020", env=env))
    assert "year>>2020" in out and "year>2020" in out
    assert httpserver.log == []  # nothing reached "Elasticsearch"


def test_unknown_log_level_is_rejected():
    out = one_line_error(invoke("status", env={"ESSEARCH_LOG_LEVEL": "LOUD"}))
    assert "ESSEARCH_LOG_LEVEL='LOUD'" in out and "WARNING" in out


def test_unknown_variable_warns_with_the_closest_name(httpserver):
    env = {
        "ESSEARCH_EMBEDER_BATCH_SIZE": "16",
        "ESSEARCH_ES_URL": "http://127.0.0.1:9",  # nothing listens: doctor fails, after warning
    }
    result = invoke("doctor", env=env)
    assert result.exit_code == 1
    assert "ESSEARCH_EMBEDER_BATCH_SIZE" in result.output
    assert "did you mean ESSEARCH_EMBEDDER_BATCH_SIZE?" in result.output


def test_unknown_variables_in_dotenv_are_warned_about(tmp_path):
    (tmp_path / ".env").write_text("ESSEARCH_INDEX_NAEM=docs\n")
    result = invoke("doctor", env={"ESSEARCH_ES_URL": "http://127.0.0.1:9"})
    assert "ESSEARCH_INDEX_NAEM" in result.output and "ESSEARCH_INDEX_NAME" in result.output


def test_unreachable_cluster_is_one_line(no_model):
    out = one_line_error(invoke("status", env={"ESSEARCH_ES_URL": "http://127.0.0.1:9"}))
    assert "127.0.0.1:9" in out


def test_server_text_with_brackets_is_printed_literally():
    """Rich markup in anything from outside is escaped in ONE place (`safe`)."""
    from essearch.cli._common import safe

    buffer = io.StringIO()
    Console(file=buffer, width=200).print(f"[red]x[/red] {safe('uri [/some/path/_health] [b]')}")
    assert "uri [/some/path/_health] [b]" in buffer.getvalue()


def test_user_error_message_covers_os_and_transport_errors(tmp_path):
    from elastic_transport import ConnectionError as TransportConnectionError

    from essearch.cli import user_error_message

    missing = FileNotFoundError(2, "No such file or directory", str(tmp_path / "x.csv"))
    assert user_error_message(missing) == f"{tmp_path / 'x.csv'}: No such file or directory"
    assert "cannot reach Elasticsearch" in (
        user_error_message(TransportConnectionError("refused")) or ""
    )
    assert user_error_message(ValueError("a bug")) is None  # bugs keep their traceback


def test_jsonl_error_column_points_at_the_bad_character():
    from essearch.ingest.loaders import FieldMap, read_jsonl

    line = '{"id": "a", "text": oops}'
    (failure,) = list(read_jsonl([line], "data.jsonl", FieldMap()))
    column = int(failure.reason.rsplit("column ", 1)[1])
    assert line[column - 1] == "o"  # 1-based, at `oops`, not at the start of the line
    assert failure.source == "data.jsonl:1"


# -- 2. --index on every index command -----------------------------------------------------------
INDEX_COMMANDS = ["init", "ingest", "search", "status", "drop", "reindex", "rollback", "gc"]


@pytest.mark.parametrize("name", INDEX_COMMANDS)
def test_every_index_command_takes_index(name):
    command = main.commands[name]
    (option,) = [p for p in command.params if "--index" in getattr(p, "opts", [])]
    assert option.name == "index_name" and option.metavar == "NAME"
    assert "ESSEARCH_INDEX_NAME" in (option.help or "")


def test_an_invalid_index_name_names_the_option():
    result = invoke("status", "--index", "Bad Name")
    assert result.exit_code == 2
    assert "--index" in result.output and "not a valid index name" in result.output


# -- 3. truthful output (units) ------------------------------------------------------------------
def test_count_line_separates_matches_from_candidates():
    from essearch.cli.search import count_line
    from essearch.retrieval import Hit, SearchResult

    hits = [Hit(id=str(i), rank=i) for i in range(1, 4)]
    fused = SearchResult(query="q", mode="hybrid", strategy="client-rrf", candidates=7, hits=hits)
    assert count_line(fused) == "3 of 7 fused candidates"
    bm25 = SearchResult(query="q", mode="bm25", strategy="bm25", total=1204, hits=hits)
    assert count_line(bm25) == "3 of 1,204 matching"
    knn = SearchResult(query="q", mode="knn", strategy="knn", candidates=10, hits=hits)
    assert count_line(knn) == "3 of 10 nearest neighbours"


def test_snippets_are_plain_text():
    from essearch.retrieval import Hit

    hit = Hit(id="a", rank=1, text="## Exceptions\n\nA **refund** is [possible](http://x) `now`.")
    assert hit.snippet() == "Exceptions A refund is possible now."
    highlighted = Hit(id="b", rank=1, highlights={"text": ["## <em>Refunds</em> *fast*"]})
    assert highlighted.snippet() == "<em>Refunds</em> fast"


def test_yellow_health_is_explained():
    from essearch.cli.index import explain_health

    text = explain_health("yellow", 1) or ""
    assert "replica" in text and "single-node" in text and "ESSEARCH_INDEX_REPLICAS=0" in text
    assert explain_health("green", 0) is None


def test_every_missing_capability_has_a_fallback():
    from essearch.cli.doctor import FALLBACKS, hybrid_plan
    from essearch.es.capabilities import Capabilities

    bare = Capabilities(version="9.5.4", license_type="basic")
    missing = [name for name, ok in bare.features().items() if not ok]
    assert missing and set(missing) <= set(FALLBACKS)
    assert "client-side RRF" in hybrid_plan(bare.features())
    assert FALLBACKS["rrf_retriever"].startswith("hybrid: client-side")


# -- 4. fast start -------------------------------------------------------------------------------
def test_help_imports_no_heavy_package(tmp_path):
    probe = (
        "import sys, runpy; sys.argv = ['essearch', '--help']\n"
        "try:\n    runpy.run_module('essearch', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    ).stdout
    loaded = set(out.strip().splitlines()[-1].strip("[]").replace("'", "").split(", "))
    assert "Semantic and hybrid search" in out
    assert not loaded & {"elasticsearch", "numpy", "torch", "pydantic", "aiohttp"}, loaded


def test_known_models_need_no_loading(no_model):
    from essearch.cli._common import configured_embedder_info
    from essearch.settings import Settings

    info = configured_embedder_info(Settings())
    assert (info.model, info.dims) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    e5 = Settings(embedder={"model": "intfloat/multilingual-e5-small"})
    assert configured_embedder_info(e5).dims == 384


# -- 5. progress ---------------------------------------------------------------------------------
def test_ingest_bar_estimates_chunks_and_counts_vectors():
    from essearch.ingest.progress import RichProgress

    buffer = io.StringIO()
    console = Console(file=buffer, width=250, force_terminal=True)
    view = RichProgress(console, unit="chunks")
    view.start(total_documents=10)
    base = dict.fromkeys(("documents", "chunks", "embedded", "skipped", "indexed", "failed"), 0)
    view.update({**base, "documents": 5, "chunks": 20, "vectors": 8})
    task = view._progress.tasks[0]  # type: ignore[union-attr]
    assert task.total == 40  # 4 chunks per document so far x 10 documents expected
    view.update(
        {**base, "documents": 10, "chunks": 37, "vectors": 37, "embedded": 37, "indexed": 30}
    )
    assert (task.total, task.completed) == (37, 30)
    view.stop()
    assert "embedded 8" in buffer.getvalue() or "embedded 37" in buffer.getvalue()


def test_phase_names_each_step_and_its_time():
    from essearch.cli._common import phase

    buffer = io.StringIO()
    out = Console(file=buffer, width=200)  # not a terminal: one line per step
    with phase("finding Elasticsearch", stream=out) as relabel:
        relabel("starting Elasticsearch 9.5.4")
    text = buffer.getvalue()
    assert "finding Elasticsearch…" in text and "starting Elasticsearch 9.5.4…" in text
    assert "✓ starting Elasticsearch 9.5.4 (" in text


def test_provisioning_reports_its_phases(tmp_path, monkeypatch):
    """A real (tiny) distribution zip in a Maven layout: unpacking is announced, a cached one is
    not unpacked again."""
    import zipfile

    from essearch.es import provision

    version = "0.0.1-test"
    monkeypatch.setenv("MAVEN_REPO_LOCAL", str(tmp_path / "m2"))
    archive = provision.maven_zip_path(version)
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"elasticsearch-{version}/bin/elasticsearch", "#!/bin/sh\n")
    phases: list[str] = []
    home = provision.unpack(version, root=tmp_path / "cache", on_phase=phases.append)
    assert (home / "bin" / "elasticsearch").is_file()
    assert phases == [f"unpacking Elasticsearch {version} (once)"]
    provision.unpack(version, root=tmp_path / "cache", on_phase=phases.append)
    assert len(phases) == 1


def test_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in (*INDEX_COMMANDS, "doctor", "demo", "node", "eval", "embed"):
        assert name in result.output
    assert isinstance(main, click.Group)


# -- integration: the same paths against the real node -------------------------------------------
@pytest.fixture
def node_env(es_url, index_name):
    return {"ESSEARCH_ES_URL": es_url, "ESSEARCH_INDEX_NAME": "essearch-unused-" + index_name}


def test_doctor_with_a_path_in_the_url_prints_the_server_message(es_url):
    result = invoke("doctor", env={"ESSEARCH_ES_URL": f"{es_url}/some/path"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "[/some/path/_cluster/health]" in result.output


def test_doctor_says_what_essearch_uses_instead(es_url):
    result = invoke("doctor", env={"ESSEARCH_ES_URL": es_url})
    assert result.exit_code == 0, result.output
    assert "essearch uses instead" in result.output
    report = json.loads(invoke("doctor", "--json", env={"ESSEARCH_ES_URL": es_url}).output)
    for name, present in report["capabilities"].items():
        assert present or report["fallbacks"][name]
    assert report["hybrid"]


def test_index_option_names_the_index_on_every_command(node_env, index_name, es_client, no_model):
    """One operator, two indices: every command works on the one named with --index."""
    assert invoke("init", "--index", index_name, env=node_env).exit_code == 0
    assert es_client.indices.exists_alias(name=index_name)
    assert not es_client.indices.exists_alias(name=node_env["ESSEARCH_INDEX_NAME"])
    status = invoke("status", "--index", index_name, "--json", env=node_env)
    assert json.loads(status.output)["name"] == index_name
    gc = invoke("gc", "--index", index_name, "--dry-run", "--json", env=node_env)
    assert gc.exit_code == 0, gc.output
    rollback = invoke("rollback", "--index", index_name, "--dry-run", env=node_env)
    assert rollback.exit_code == 1 and index_name in rollback.output  # nothing to go back to
    assert "Traceback" not in rollback.output
    drop = invoke("drop", "--index", index_name, "--yes", "--force", env=node_env)
    assert drop.exit_code == 0 and f"{index_name}-v1" in drop.output
    assert not es_client.indices.exists_alias(name=index_name)


def test_single_node_gets_zero_replicas_and_says_so(es_url, index_name, es_client, no_model):
    result = invoke("init", "--index", index_name, env={"ESSEARCH_ES_URL": es_url})
    assert result.exit_code == 0, result.output
    assert "replicas: 0, because the cluster has a single node" in result.output
    index = f"{index_name}-v1"
    settings = es_client.indices.get_settings(index=index).body[index]["settings"]["index"]
    assert settings["number_of_replicas"] == "0"
    again = invoke("init", "--index", index_name, env={"ESSEARCH_ES_URL": es_url})
    assert "already matches" in again.output  # the choice is not a definition difference


def test_replicas_asked_for_are_kept_and_yellow_is_explained(es_url, index_name, no_model):
    env = {"ESSEARCH_ES_URL": es_url, "ESSEARCH_INDEX_REPLICAS": "1"}
    assert invoke("init", "--index", index_name, env=env).exit_code == 0
    status = invoke("status", "--index", index_name, env=env)
    assert "health yellow" in status.output and "single-node cluster cannot hold" in status.output


def test_ingest_status_and_search_tell_the_truth(es_url, index_name, tmp_path, local_embedder):
    env = {"ESSEARCH_ES_URL": es_url, "ESSEARCH_INDEX_REPLICAS": "0"}
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:12]
    corpus = tmp_path / "corpus.jsonl"
    long_text = " ".join(
        f"Refund rule {i}: money returns to the card within days." for i in range(90)
    )
    corpus.write_text(
        "\n".join([*lines, json.dumps({"id": "long", "text": long_text})]) + "\n", encoding="utf-8"
    )
    ingested = invoke("ingest", str(corpus), "--index", index_name, "--json", env=env)
    assert ingested.exit_code == 0, ingested.output
    summary = json.loads(ingested.output[ingested.output.index("{") :])
    assert summary["documents"] == 13 and summary["chunks"] > 13

    status = json.loads(invoke("status", "--index", index_name, "--json", env=env).output)
    (version,) = status["versions"]
    assert version["documents"] == 13 and version["chunks"] == summary["chunks"]
    table = invoke("status", "--index", index_name, env=env).output
    assert "chunks" in table and "documents" in table

    found = invoke("search", "refund card", "-k", "3", "--index", index_name, env=env)
    assert found.exit_code == 0, found.output
    as_json = invoke("search", "refund card", "-k", "3", "--index", index_name, "--json", env=env)
    result = json.loads(as_json.output)
    assert len(result["hits"]) == 3 and result["total"] is None and result["candidates"] >= 3
    assert f"3 of {result['candidates']} fused candidates" in found.output
    bm25 = json.loads(
        invoke(
            "search",
            "refund",
            "--mode",
            "bm25",
            "-k",
            "2",
            "--index",
            index_name,
            "--json",
            env=env,
        ).output
    )
    assert bm25["total"] >= 2 and bm25["candidates"] is None
