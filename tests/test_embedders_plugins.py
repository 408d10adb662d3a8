"""Embedder plugins: a package that declares a backend under the `essearch.embedders` entry-point
group is found by name (settings, `create_embedder`, the CLI's --provider), like a built-in.

The plugin is a real distribution on sys.path: a module plus a `.dist-info` directory with its
`entry_points.txt`, which is what `pip install` leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from essearch.cli import main
from essearch.embedders import (
    available_providers,
    create_embedder,
    embedder_class,
    register_embedder,
)
from essearch.embedders.registry import _REGISTRY, ENTRY_POINT_GROUP
from essearch.errors import ConfigurationError
from essearch.settings import EmbedderSettings, load_settings

PLUGIN_MODULE = '''
"""A tiny essearch embedder plugin: character-trigram hashing into a fixed number of dims."""
import hashlib

from essearch.embedders.base import Embedder


class HashingEmbedder(Embedder):
    provider = "hashing"

    def __init__(self, model: str = "", *, dims: int | None = None, **kwargs):
        super().__init__(model or "trigram-hash", dims=dims or 16, **kwargs)

    def _embed(self, texts):
        vectors = []
        for text in texts:
            vector = [0.0] * self.dims
            padded = f"  {text.lower()} "
            for i in range(len(padded) - 2):
                digest = hashlib.sha256(padded[i : i + 3].encode()).digest()
                vector[digest[0] % self.dims] += 1.0
            vectors.append(vector)
        return vectors


class NotAnEmbedder:
    pass
'''


def _install_plugin(root: Path, entry_points: str) -> Path:
    """What `pip install essearch-hashing` would leave in site-packages."""
    (root / "essearch_hashing.py").write_text(textwrap.dedent(PLUGIN_MODULE), encoding="utf-8")
    dist = root / "essearch_hashing-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: essearch-hashing\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n", encoding="utf-8"
    )
    return root


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = _install_plugin(
        tmp_path,
        "hashing = essearch_hashing:HashingEmbedder\nbroken = essearch_hashing:NotAnEmbedder",
    )
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("hashing", "broken"):
        _REGISTRY.pop(name, None)
    sys.modules.pop("essearch_hashing", None)


def test_an_installed_plugin_is_a_provider_like_the_built_ins(plugin_path: Path) -> None:
    assert {"hashing", "local", "openai"} <= set(available_providers())
    embedder = create_embedder(EmbedderSettings(provider="hashing", dimensions=8))
    assert type(embedder).__name__ == "HashingEmbedder"
    assert embedder.info.provider == "hashing"
    vectors = embedder.embed_documents(["cat", "cats", "stock market"])
    assert [len(v) for v in vectors] == [8, 8, 8]
    assert vectors[0] != vectors[2]


def test_settings_accept_a_plugin_provider_from_the_environment(
    plugin_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESSEARCH_EMBEDDER_PROVIDER", "hashing")
    assert load_settings().embedder.provider == "hashing"


def test_a_plugin_that_is_not_an_embedder_is_refused_by_name(plugin_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"'broken' \(essearch_hashing:NotAnEmbedder\)"):
        embedder_class("broken")


def test_unknown_provider_names_the_full_variable_and_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ESSEARCH_EMBEDDER_PROVIDER", "nope")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "ESSEARCH_EMBEDDER_PROVIDER='nope'" in message
    assert "local" in message and "essearch.embedders" in message


def test_overrides_of_one_group_name_the_full_variable() -> None:
    with pytest.raises(ConfigurationError) as raised:
        create_embedder(EmbedderSettings(), batch_size=0)
    assert "ESSEARCH_EMBEDDER_BATCH_SIZE=0" in str(raised.value)
    with pytest.raises(ConfigurationError) as raised:
        create_embedder(EmbedderSettings(), provider="fake")
    assert "ESSEARCH_EMBEDDER_PROVIDER='fake'" in str(raised.value)


def test_run_time_registration_makes_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from essearch.embedders import register_embedder
    from essearch.embedders.local import LocalEmbedder

    class Fake(LocalEmbedder):
        provider = "fake"

    register_embedder("fake", Fake)
    try:
        assert isinstance(create_embedder(EmbedderSettings(), provider="fake"), Fake)
    finally:
        _REGISTRY.pop("fake", None)


def test_cli_embeds_through_the_plugin(plugin_path: Path) -> None:
    result = CliRunner().invoke(main, ["embed", "--help"])
    assert "hashing" in result.output
    result = CliRunner().invoke(main, ["embed", "hello world", "--provider", "hashing", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["embedder"]["provider"] == "hashing"
    assert payload["embeddings"][0]["dims"] == 16
    assert any(payload["embeddings"][0]["embedding"])


def test_cli_in_a_fresh_process_finds_the_plugin(plugin_path: Path) -> None:
    """As an installed package: a new interpreter discovers it from its metadata alone."""
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin_path), str(repo)]),
        "ESSEARCH_EMBEDDER_PROVIDER": "hashing",
    }
    done = subprocess.run(
        [sys.executable, "-m", "essearch", "embed", "plugins work", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["embedder"]["provider"] == "hashing"


def test_ingest_closes_the_embedder_it_creates(plugin_path: Path, settings_for, index_name) -> None:
    """`ingest()` without an embedder builds the configured one (here the plugin) and closes it."""
    from essearch.ingest import IngestOptions, ingest

    hashing = embedder_class("hashing")
    closed: list[str] = []

    class Closing(hashing):  # type: ignore[misc,valid-type]
        def close(self) -> None:
            closed.append(self.model)

    register_embedder("hashing-closing", Closing)
    try:
        settings = settings_for(index_name, embedder={"provider": "hashing-closing"})
        report = ingest(
            [{"id": "a", "text": "plugins reach the index"}],
            settings=settings,
            options=IngestOptions(dead_letter=None),
        )
        assert report.indexed == 1 and report.failed == 0
        assert closed == ["trigram-hash"]
    finally:
        _REGISTRY.pop("hashing-closing", None)
