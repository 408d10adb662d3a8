"""The README's `essearch ...` examples, run in order against the test node.

Every command line in a ```bash block is either run here (through click's CliRunner, in a
scratch directory holding the files the examples name) or listed in EXTERNAL with the reason it
needs something the test node cannot give. A new example that is neither fails the first test.
"""

from __future__ import annotations

import json
import random
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from essearch.cli import main

ROOT = Path(__file__).resolve().parents[1]

# command prefix -> why it is not run against the test node
EXTERNAL = {
    "essearch demo": "starts or finds its own Elasticsearch; run by tests/test_demo_pty.py",
    "essearch reindex --provider openai": "needs an OpenAI API key and api.openai.com",
    'essearch search "warranty for defects" --rerank': (
        "needs a rerank server (the README exports a TEI one at localhost:8081); "
        "tests/test_rerank.py runs reranking against local servers"
    ),
    "essearch eval --dataset ../shared/data/scifact": (
        "needs the BEIR SciFact data set beside the checkout and minutes of embedding "
        "(tests/test_eval_e2e.py runs eval on a small set)"
    ),
}
# answers for commands that ask before deleting
ANSWERS = {"essearch gc": "y\n"}
# commands that need an index of their own: 1536-d precomputed vectors cannot share the MiniLM one
OWN_INDEX = ("essearch ingest embeddings.parquet",)


def readme_commands() -> list[str]:
    """Every `essearch ...` command in the README's bash blocks, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            code = re.sub(r"\s+#\s.*$", "", line).strip()
            for part in re.split(r"\s*(?:&&|;)\s*", code):
                if part.startswith("essearch "):
                    commands.append(part)
    return commands


def external_reason(command: str) -> str | None:
    return next((why for prefix, why in EXTERNAL.items() if command.startswith(prefix)), None)


def test_readme_has_examples_and_every_one_is_classified():
    commands = readme_commands()
    assert len(commands) >= 12
    run_here = [c for c in commands if external_reason(c) is None]
    assert len(run_here) >= 10  # most examples run for real
    assert all(isinstance(shlex.split(c), list) for c in commands)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working directory with the files the examples name: docs/ and corpus.jsonl."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    sample = (ROOT / "essearch" / "data" / "sample_corpus.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in sample.splitlines()[:20]]
    for record in records:
        record["body"] = record.pop("text")
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    # kb/: the documents section's folder (Markdown with headings; notes/refunds.md is the one
    # the `--root` and `--like` examples name)
    (tmp_path / "kb" / "notes").mkdir(parents=True)
    (tmp_path / "kb" / "notes" / "refunds.md").write_text(
        "# Refunds\n\nThe refund window is thirty days from delivery.\n\n"
        "## Exceptions\n\nGift cards cannot be refunded.\n",
        encoding="utf-8",
    )
    (tmp_path / "kb" / "shipping.md").write_text(
        "# Shipping\n\nParcels leave the warehouse within two working days.\n", encoding="utf-8"
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(7)
    rows = [[rng.uniform(-1, 1) for _ in range(1536)] for _ in range(3)]
    table = pa.table(
        {
            "id": ["v1", "v2", "v3"],
            "text": ["first text", "second text", "third text"],
            "embedding": rows,
        }
    )
    pq.write_table(table, tmp_path / "embeddings.parquet")
    monkeypatch.chdir(tmp_path)
    import essearch.cli._common as common

    monkeypatch.setattr(common.console, "width", 200)
    return tmp_path


def test_readme_commands_run_against_the_test_node(scratch, es_url, index_name, local_embedder):
    env = {"ESSEARCH_ES_URL": es_url, "ESSEARCH_INDEX_NAME": index_name}
    ran = []
    for command in readme_commands():
        if external_reason(command):
            continue
        args = shlex.split(command)[1:]
        own = (
            {"ESSEARCH_INDEX_NAME": f"{index_name}-vectors"}
            if command.startswith(OWN_INDEX)
            else {}
        )
        result = CliRunner().invoke(main, args, env={**env, **own}, input=ANSWERS.get(command))
        assert result.exit_code == 0, f"{command}\n{result.output}"
        assert "Traceback" not in result.output
        ran.append(args[0])
    assert {"doctor", "init", "ingest", "search", "status", "reindex", "rollback", "gc"} <= set(ran)
