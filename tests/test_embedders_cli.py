"""`essearch embed`, `essearch similar` and `essearch embed-endpoint` through click's CliRunner."""

from __future__ import annotations

import csv
import json
import math

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from essearch.cli import main


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    for name in (
        "ESSEARCH_EMBEDDER_PROVIDER",
        "ESSEARCH_EMBEDDER_MODEL",
        "ESSEARCH_EMBEDDER_CACHE_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_embed_summary(runner) -> None:
    result = runner.invoke(main, ["embed", "hello world", "a second text"])
    assert result.exit_code == 0, result.output
    assert "384" in result.output and "1.0000" in result.output
    assert "all-MiniLM-L6-v2" in result.output


def test_embed_json_full_vectors(runner, local_embedder) -> None:
    result = runner.invoke(main, ["embed", "--json", "hello world"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["embedder"]["dims"] == 384
    vector = data["embeddings"][0]["embedding"]
    assert len(vector) == 384
    expected = local_embedder.embed_documents(["hello world"])[0]
    assert max(abs(a - b) for a, b in zip(vector, expected, strict=True)) < 1e-5


def test_embed_rejects_blank_text(runner) -> None:
    result = runner.invoke(main, ["embed", "ok", "  "])
    assert result.exit_code == 1
    assert "position(s) 1" in result.output


def test_similar_matrix(runner) -> None:
    texts = ["A man is eating food.", "A man is eating bread.", "A plane is taking off."]
    result = runner.invoke(main, ["similar", "--json", *texts])
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)["matrix"]
    assert len(matrix) == 3 and all(math.isclose(matrix[i][i], 1.0, abs_tol=1e-4) for i in range(3))
    assert matrix[0][1] == pytest.approx(matrix[1][0])
    assert matrix[0][1] > matrix[0][2] + 0.2
    table = runner.invoke(main, ["similar", *texts])
    assert table.exit_code == 0 and "cosine similarity" in table.output
    assert f"{matrix[0][1]:.3f}" in table.output
    assert runner.invoke(main, ["similar", "only one"]).exit_code == 2


def write_dataset(path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "The cat sat on the mat."}),
        json.dumps({"id": "b", "text": "Dogs are loyal animals."}),
        "{not json",
        json.dumps({"id": "c", "text": "   "}),
        json.dumps({"id": "d", "body": "no text field"}),
        json.dumps({"id": 5, "text": "Numbers as ids are kept as strings."}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_dataset_to_parquet_round_trip(runner, tmp_path, local_embedder) -> None:
    source, target = tmp_path / "data.jsonl", tmp_path / "out" / "vectors.parquet"
    write_dataset(source)
    args = ["embed", "--input", str(source), "--id-field", "id", "--output", str(target)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{source}:3: invalid JSON" in result.output
    assert f"{source}:4: field 'text' is missing or empty" in result.output
    assert f"{source}:5: field 'text'" in result.output
    table = pq.read_table(target).to_pylist()
    assert [row["id"] for row in table] == ["a", "b", "5"]
    assert [row["line"] for row in table] == [1, 2, 6]
    expected = local_embedder.embed_documents([row["text"] for row in table])
    for row, vector in zip(table, expected, strict=True):
        assert len(row["embedding"]) == 384
        assert max(abs(a - b) for a, b in zip(row["embedding"], vector, strict=True)) < 1e-6


def test_dataset_to_csv(runner, tmp_path) -> None:
    source, target = tmp_path / "data.jsonl", tmp_path / "vectors.csv"
    write_dataset(source)
    result = runner.invoke(
        main, ["embed", "--input", str(source), "--output", str(target), "--batch-size", "2"]
    )
    assert result.exit_code == 0, result.output
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["text"] == "The cat sat on the mat."
    assert len(rows) == 3 and all(len(json.loads(r["embedding"])) == 384 for r in rows)


def test_dataset_usage_errors(runner, tmp_path) -> None:
    source = tmp_path / "data.jsonl"
    write_dataset(source)
    assert runner.invoke(main, ["embed", "--input", str(source)]).exit_code == 2
    bad = runner.invoke(main, ["embed", "--input", str(source), "--output", "x.txt"])
    assert bad.exit_code == 2 and ".parquet" in bad.output
    assert runner.invoke(main, ["embed"]).exit_code == 2


def test_provider_option_overrides_settings(runner, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ESSEARCH_EMBEDDER_API_KEY", raising=False)
    result = runner.invoke(main, ["embed", "--provider", "openai", "hello"])
    assert result.exit_code == 1
    assert "ESSEARCH_EMBEDDER_API_KEY" in result.output


def test_endpoint_create_dry_run_masks_key(runner) -> None:
    args = [
        "embed-endpoint", "create", "local-emb", "--model", "nomic-embed-text",
        "--url", "http://host:11434/v1/embeddings", "--dimensions", "768",
        "--api-key", "sk-very-secret-key-123", "--dry-run",
    ]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    request = json.loads(result.stdout)
    assert request["method"] == "PUT"
    assert request["path"] == "/_inference/text_embedding/local-emb"
    assert request["body"]["service"] == "openai"
    assert request["body"]["service_settings"]["dimensions"] == 768
    assert request["body"]["service_settings"]["api_key"] == "**********"
    assert "sk-very-secret-key-123" not in result.output


def test_endpoint_create_on_the_test_node(runner, es_url, monkeypatch) -> None:
    monkeypatch.setenv("ESSEARCH_ES_URL", es_url)
    args = ["embed-endpoint", "create", "t-emb", "--model", "m", "--api-key", "sk-secret-9"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "inference API is not available" in result.output
    assert "sk-secret-9" not in result.output
