"""The README's `essearch ...` examples, run in order against the test node.

Every command line in a ```bash block is either run here (through click's CliRunner, in a
scratch directory holding the files the examples name) or listed in EXTERNAL with the reason it
needs something the test node cannot give. A new example that is neither fails the first test.
"""

from __future__ import annotations

import json
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
    records[0]["id"] = "doc-42"  # the id the `search --like` example names
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
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
        result = CliRunner().invoke(main, args, env=env, input=ANSWERS.get(command))
        assert result.exit_code == 0, f"{command}\n{result.output}"
        assert "Traceback" not in result.output
        ran.append(args[0])
    assert {"doctor", "init", "ingest", "search", "status", "reindex", "rollback", "gc"} <= set(ran)
