"""Rebuilding documents from their chunks and choosing a migration's chunking (no cluster)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from essearch.embedders.base import EmbedderInfo
from essearch.index.chunking import ChunkerConfig, chunking_for, default_config, same_chunking
from essearch.ingest.chunker import Chunker
from essearch.ingest.loaders import Document
from essearch.ingest.planning import chunk_source
from essearch.ops.rebuild import RebuildError, rebuild_document, rechunk
from essearch.ops.reindex import plan_chunking
from essearch.settings import Settings

TOKENS = default_config("local", None)
CONFIGS = [
    replace(TOKENS, size=24, overlap=0),
    replace(TOKENS, size=24, overlap=8),
    replace(TOKENS, size=64, overlap=16),
    ChunkerConfig(120, 30, "chars"),
    ChunkerConfig(300, 0, "chars"),
]
TEXTS = [
    "  Leading spaces.\n\nA second paragraph that is long enough to be cut somewhere in the "
    "middle of it, with commas, clauses and more words than one chunk holds.\n\n\n"
    "Third paragraph.   Trailing spaces after it.   \n",
    "火山喷发时，岩浆从地壳深处涌出。冷却后形成玄武岩。\n\n企鹅生活在南半球的寒冷海域，"
    "它们擅长游泳，却不会飞。编译器把源代码解析成语法树，再生成机器码。" * 3,
    "word " * 400,
    "One line only.",
]


def sources_of(doc: Document, config: ChunkerConfig, indexed_at: str = "2026-01-01") -> list:
    return [chunk_source(c, [0.1], indexed_at) for c in Chunker(config).chunks(doc)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.unit}-{c.size}-{c.overlap}")
def test_rebuilt_text_is_the_original_and_rechunking_matches_a_fresh_ingest(config) -> None:
    for i, text in enumerate(TEXTS):
        doc = Document(id=f"d{i}", text=text, title="T", metadata={"lang": "x"})
        sources = sources_of(doc, config)
        random.Random(i).shuffle(sources)  # the order chunks come back in does not matter
        rebuilt = rebuild_document(sources)
        assert rebuilt.exact and rebuilt.document.text == text.rstrip()
        assert rebuilt.document.title == "T" and rebuilt.document.metadata == {"lang": "x"}
        assert rebuilt.content_hash == sources[0]["content_hash"]
        for other in CONFIGS:
            fresh = Chunker(other).chunks(doc)
            again = rechunk(rebuilt, Chunker(other))
            assert [c.id for c in again] == [c.id for c in fresh]
            assert [c.content_hash for c in again] == [c.content_hash for c in fresh]
            assert [(c.offset, c.gap) for c in again] == [(c.offset, c.gap) for c in fresh]


def test_rechunking_keeps_each_chunk_on_its_own_page_and_heading() -> None:
    """A PDF's pages and a Markdown file's headings survive a re-chunking migration: every new
    chunk carries the page and headings of the text it holds, as a fresh ingest would."""
    pages = [
        f"Page {n} text. " + f"Sentence {n} about tides and harbours. " * 12 for n in (1, 2, 3)
    ]
    text, sections, at = "", [], 0
    for n, page in enumerate(pages, start=1):
        sections.append((at, {"page": n, "headings": [f"Part {n}"]}))
        text += page + "\n\n"
        at = len(text)
    doc = Document(
        id="p", text=text, metadata={"file": "p.pdf"}, sections=sections, origin="/kb/p.pdf"
    )
    for config in (CONFIGS[0], CONFIGS[3]):
        sources = [
            chunk_source(c, [0.1], "2026-01-01", doc.origin) for c in Chunker(config).chunks(doc)
        ]
        rebuilt = rebuild_document(sources)
        assert rebuilt.document.metadata == {"file": "p.pdf"}
        assert rebuilt.document.origin == "/kb/p.pdf"  # --sync still reaches the new chunks
        for other in CONFIGS:
            fresh = Chunker(other).chunks(doc)
            again = rechunk(rebuilt, Chunker(other))
            assert [c.metadata for c in again] == [c.metadata for c in fresh]
            assert {c.metadata["page"] for c in again} == {1, 2, 3}
            assert [c.id for c in again] == [c.id for c in fresh]


def test_title_only_document_rebuilds_to_an_empty_text() -> None:
    doc = Document(id="t", text="   ", title="Only a title")
    rebuilt = rebuild_document(sources_of(doc, CONFIGS[0]))
    assert rebuilt.document.text == "" and rebuilt.document.title == "Only a title"
    assert [c.text for c in rechunk(rebuilt, Chunker(CONFIGS[3]))] == ["Only a title"]


def test_only_the_newest_version_of_a_document_is_rebuilt() -> None:
    old = Document(id="d", text="The old text. " * 30, title="T")
    new = Document(id="d", text="The new text, rewritten. " * 30, title="T")
    mixed = sources_of(old, CONFIGS[0], "2026-01-01") + sources_of(new, CONFIGS[0], "2026-02-01")
    rebuilt = rebuild_document(mixed)
    assert rebuilt.document.text == new.text.rstrip()
    assert rebuilt.indexed_at == "2026-02-01"


def test_chunks_without_offsets_are_joined_by_their_overlap() -> None:
    doc = Document(id="d", text=" ".join(f"w{i}" for i in range(200)), title=None)
    sources = sources_of(doc, ChunkerConfig(120, 40, "chars"))
    for source in sources:  # as written before offsets were stored
        del source["offset"], source["gap"]
    rebuilt = rebuild_document(sources)
    assert not rebuilt.exact
    assert rebuilt.document.text.split() == doc.text.split()


def test_inconsistent_offsets_are_refused_with_the_document_named() -> None:
    doc = Document(id="broken", text="Alpha beta gamma. " * 40)
    sources = sources_of(doc, CONFIGS[0])
    assert len(sources) > 1
    sources[1]["offset"] += 5
    with pytest.raises(RebuildError, match="broken"):
        rebuild_document(sources)


MINILM = EmbedderInfo("local", "sentence-transformers/all-MiniLM-L6-v2", 384, "dot_product")
OPENAI = EmbedderInfo("openai", "text-embedding-3-small", 128, "dot_product")


def test_migration_chunking_defaults_follow_the_model_and_choices_stick() -> None:
    plain = Settings()
    minilm_default = chunking_for("local", MINILM.model)
    custom = replace(minilm_default, size=24, overlap=0)
    # same embedder, nothing asked: whatever the index records is kept
    assert plan_chunking(plain, MINILM, MINILM, custom)[0] == custom
    # new embedder, the old default recorded: the new embedder's default
    new, note = plan_chunking(plain, MINILM, OPENAI, minilm_default)
    assert same_chunking(new, chunking_for("openai", OPENAI.model)) and "default" in note
    assert new.unit == "chars" and new.size == 1500
    # new embedder, a chosen chunking recorded: kept
    assert plan_chunking(plain, MINILM, OPENAI, custom)[0] == custom
    # asked for: applied on the new embedder's unit
    asked = Settings(index={"chunk_size": 64, "chunk_overlap": 8})
    new, note = plan_chunking(asked, MINILM, MINILM, custom)
    assert (new.unit, new.size, new.overlap, note) == ("tokens", 64, 8, "asked for")
    # nothing recorded (an index made before chunking was recorded): the embedder's default
    assert same_chunking(plan_chunking(plain, None, MINILM, None)[0], minilm_default)


def test_recorded_chunking_round_trips_without_machine_paths() -> None:
    meta = TOKENS.to_meta()
    assert "/" not in str(meta) and meta["tokenizer"] == "all-MiniLM-L6-v2"
    assert same_chunking(ChunkerConfig.from_meta(meta), TOKENS)
    chars = ChunkerConfig(700, 70, "chars")
    assert ChunkerConfig.from_meta(chars.to_meta()) == chars
