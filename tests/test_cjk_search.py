"""Chinese, Traditional, mixed Chinese-English and Japanese text on the real node: word-level BM25
through the client-made CJK field, cross-script matching, highlighting of the original text, the
language guard in ingest, doctor and hybrid search, and `reindex` filling the field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import helpers

from essearch.cli import main
from essearch.index import IndexManager
from essearch.index.schema import CJK_FIELD, LANGUAGE_FIELD
from essearch.ingest.chunker import Chunk, default_config
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.ingest.planning import chunk_source
from essearch.ops import ReindexOptions, run_reindex
from essearch.retrieval import SearchClient
from essearch.text import cjk

DOCS = [
    {
        "id": "zh-s",
        "title": "北京",
        "text": "北京是中华人民共和国的首都，也是全国的政治中心。两岸关系的发展备受关注。",
    },
    {
        "id": "zh-t",
        "title": "高鐵",
        "text": "臺灣高速鐵路連接臺北與高雄，全程約九十分鐘，是島內最重要的交通工具。",
    },
    {
        "id": "mixed",
        "title": "混合检索",
        "text": "使用 Elasticsearch 构建混合检索系统，结合 BM25 与向量搜索，提升召回率。",
    },
    {"id": "ja", "title": "東京", "text": "東京スカイツリーは東京都墨田区にある電波塔です。"},
    {"id": "en", "title": "Solar", "text": "Solar panel efficiency improves with cooling."},
]
CHUNKS = replace(default_config("local", None), size=200, overlap=0)


@pytest.fixture
def corpus(es_client, index_name, settings_for, local_embedder, tmp_path):
    settings = settings_for(index_name)
    report = ingest(
        DOCS,
        settings=settings,
        client=es_client,
        embedder=local_embedder,
        options=IngestOptions(chunker=CHUNKS, dead_letter=tmp_path / "dead.jsonl"),
    )
    assert report.ok and report.indexed == len(DOCS)
    return settings, report


def bm25_ids(settings, local_embedder, query: str) -> list[str]:
    with SearchClient(settings, embedder=local_embedder) as search:
        return [h.doc_id for h in search.search(query, mode="bm25", k=5).hits]


def test_index_has_a_whitespace_word_field_and_chunks_carry_words(corpus, es_client) -> None:
    settings, _ = corpus
    mapping = es_client.indices.get_mapping(index=settings.index.name).body
    (entry,) = mapping.values()
    props = entry["mappings"]["properties"]
    assert props[CJK_FIELD] == {"type": "text", "analyzer": "whitespace"}
    assert entry["mappings"]["_meta"]["essearch"]["cjk"]["segmenter"] == "rjieba"
    hits = es_client.search(index=settings.index.name, size=10)["hits"]["hits"]
    by_doc = {h["_source"]["doc_id"]: h["_source"] for h in hits}
    assert "台湾" in by_doc["zh-t"][CJK_FIELD].split()  # folded to simplified, cut into words
    assert by_doc["zh-t"]["text"].startswith("臺灣")  # the text itself stays as written
    assert CJK_FIELD not in by_doc["en"]
    assert {d: s[LANGUAGE_FIELD] for d, s in by_doc.items()} == {
        "zh-s": "zh",
        "zh-t": "zh",
        "mixed": "zh",
        "ja": "ja",
        "en": "en",
    }


def test_words_match_where_characters_alone_would_not(corpus, es_client) -> None:
    settings, _ = corpus
    # "都首" has the characters of 首都 but is no word: the word field does not match it
    index = settings.index.name
    word_hits = es_client.search(index=index, query={"match": {CJK_FIELD: "首都"}})["hits"]
    assert [h["_source"]["doc_id"] for h in word_hits["hits"]] == ["zh-s"]
    assert es_client.search(index=index, query={"match": {CJK_FIELD: "都首"}})["hits"]["hits"] == []
    unigram = es_client.search(index=index, query={"match": {"text": "都首"}})["hits"]["hits"]
    assert unigram  # the standard analyzer matches the characters


def test_simplified_query_finds_traditional_document_and_back(corpus, local_embedder) -> None:
    settings, _ = corpus
    # no character in common between the query and the document: only the fold can match
    assert cjk.fold("台湾") != "臺灣" and not set("台湾") & set(DOCS[1]["text"])
    assert bm25_ids(settings, local_embedder, "台湾")[:1] == ["zh-t"]
    assert not set("關係") & set(DOCS[0]["text"])
    assert bm25_ids(settings, local_embedder, "兩岸關係")[:1] == ["zh-s"]


def test_mixed_and_japanese_queries(corpus, local_embedder) -> None:
    settings, _ = corpus
    assert bm25_ids(settings, local_embedder, "混合检索 BM25")[:1] == ["mixed"]
    assert bm25_ids(settings, local_embedder, "Elasticsearch")[:1] == ["mixed"]  # English part
    assert bm25_ids(settings, local_embedder, "スカイツリー")[:1] == ["ja"]
    assert bm25_ids(settings, local_embedder, "solar cooling")[:1] == ["en"]


def test_highlights_show_the_original_text(corpus, local_embedder) -> None:
    settings, _ = corpus
    with SearchClient(settings, embedder=local_embedder) as search:
        hit = search.search("高速鐵路", mode="bm25", k=1).hits[0]
    assert hit.doc_id == "zh-t"
    fragment = hit.highlights["text"][0]
    assert "<em>" in fragment and "臺灣" in fragment
    assert CJK_FIELD not in (hit.source or {})  # the token copy is never shipped back


def test_ingest_reports_languages_and_warns_once_for_the_english_model(corpus) -> None:
    _, report = corpus
    assert next(iter(report.languages)) == "zh" and report.languages["zh"] > 0.5
    assert report.language_warning is not None
    assert "all-MiniLM-L6-v2" in report.language_warning
    assert "BAAI/bge-small-zh-v1.5" in report.language_warning
    assert report.to_dict()["language_warning"] == report.language_warning


def test_english_corpus_gets_no_warning(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    report = ingest(
        [DOCS[-1]],
        settings=settings_for(index_name),
        client=es_client,
        embedder=local_embedder,
        options=IngestOptions(chunker=CHUNKS, dead_letter=tmp_path / "dead.jsonl"),
    )
    assert report.languages == {"en": 1.0} and report.language_warning is None


def test_doctor_says_it_once(corpus, es_url, monkeypatch) -> None:
    settings, _ = corpus
    monkeypatch.setenv("ESSEARCH_ES_URL", es_url)
    monkeypatch.setenv("ESSEARCH_INDEX_NAME", settings.index.name)
    result = CliRunner().invoke(main, ["doctor", "--json"])
    report = json.loads(result.output)
    coverage = report["index_languages"]
    assert coverage["languages"]["zh"] == pytest.approx(0.6)
    assert "BAAI/bge-m3" in coverage["warning"]
    text = CliRunner().invoke(main, ["doctor"]).output
    assert text.count("was not trained for") == 1


def test_hybrid_weighs_the_knn_leg_down_for_uncovered_queries(corpus, local_embedder) -> None:
    settings, _ = corpus
    with SearchClient(settings, embedder=local_embedder) as search:
        zh = search.search("台湾高速铁路", k=3, explain=True)
        en = search.search("solar panel cooling", k=3, explain=True)
    assert any("language guard" in note for note in zh.explain.notes)
    assert zh.hits[0].doc_id == "zh-t"
    assert not any("language guard" in note for note in en.explain.notes)


def test_reindex_fills_the_word_field_of_an_older_index(
    es_client, index_name, settings_for, local_embedder, tmp_path: Path
) -> None:
    old_definition = tmp_path / "old.json"
    old_definition.write_text(
        json.dumps(
            {
                "extends": "default",
                "mappings": {
                    "dynamic": False,
                    "properties": {CJK_FIELD: None, LANGUAGE_FIELD: None},
                },
            }
        )
    )
    old = settings_for(index_name, index={"definition": str(old_definition)})
    IndexManager(es_client, old, local_embedder.info).init()
    chunks = [
        Chunk(id=f"{d['id']}-0", doc_id=d["id"], position=0, title=d["title"], text=d["text"])
        for d in DOCS
    ]
    vectors = local_embedder.embed_documents([c.embed_text for c in chunks])
    actions = []
    for chunk, vector in zip(chunks, vectors, strict=True):
        source = chunk_source(chunk, vector, "2024-01-01T00:00:00+00:00")
        source.pop(CJK_FIELD, None)  # as an index made before the field holds it
        source.pop(LANGUAGE_FIELD, None)
        actions.append({"_index": f"{index_name}-write", "_id": chunk.id, "_source": source})
    helpers.bulk(es_client, actions, refresh=True)
    assert bm25_ids(old, local_embedder, "台湾") == []

    new = settings_for(index_name)
    result = run_reindex(
        es_client, new, local_embedder, options=ReindexOptions(dead_letter=tmp_path / "d.jsonl")
    )
    assert result.status == "swapped", result.to_dict()
    assert bm25_ids(new, local_embedder, "台湾")[:1] == ["zh-t"]
    status = IndexManager(es_client, new, local_embedder.info).status()
    described = {v.index: v.cjk for v in status.versions}
    assert "rjieba" in (described[f"{index_name}-v2"] or "")
    assert "characters only" in (described[f"{index_name}-v1"] or "")
