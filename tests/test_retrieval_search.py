"""Retrieval against the real node on a small crafted corpus (real MiniLM embeddings)."""

from __future__ import annotations

import logging
import uuid

import pytest
from elasticsearch import helpers

from essearch.errors import CapabilityError, LicenseError, ModelMismatchError, SearchError
from essearch.es.capabilities import Capabilities
from essearch.index import IndexManager
from essearch.retrieval import AUTO_FALLBACK, AsyncSearchClient, F, SearchClient
from essearch.settings import Settings

LEXICAL_ID = "lex"  # rare token only BM25 can match exactly
SEMANTIC_ID = "sem"  # paraphrase of its query, sharing no keyword
BOTH_ID = "both"  # matches its query lexically and semantically

CORPUS = [
    # id, doc_id, title, text, metadata
    (
        LEXICAL_ID,
        "d-lex",
        "Network notes",
        "The zyxquor handshake retries every packet twice.",
        {"lang": "en", "year": 2019, "tag": "net"},
    ),
    (
        SEMANTIC_ID,
        "d-sem",
        "Pets",
        "Cats often nap on the sofa for hours.",
        {"lang": "en", "year": 2021, "tag": "animals"},
    ),
    (
        BOTH_ID,
        "d-both",
        "Solar panel efficiency",
        "Solar panel efficiency improves with cooling.",
        {"lang": "en", "year": 2023, "tag": "energy"},
    ),
    (
        "both-zh",
        "d-both-zh",
        "太阳能",
        "Solar panel efficiency drops when panels overheat.",
        {"lang": "zh", "year": 2024, "tag": "energy"},
    ),
    (
        "dog",
        "d-dog",
        "Dogs",
        "A puppy chews shoes when it is bored.",
        {"lang": "en", "year": 2018, "tag": "animals", "draft": True},
    ),
    (
        "kitten-zh",
        "d-kitten",
        "小猫",
        "Kittens like to sleep curled up in warm places.",
        {"lang": "zh", "year": 2022, "tag": "animals"},
    ),
    (
        "bread",
        "d-bread",
        "Baking",
        "Knead the dough and let it rise before baking bread.",
        {"lang": "en", "year": 2020, "tag": "food"},
    ),
    (
        "rust",
        "d-rust",
        "Rust",
        "Ownership and borrowing make memory safety checkable.",
        {"lang": "en", "year": 2015, "tag": "code"},
    ),
    (
        "wind",
        "d-wind",
        "Wind",
        "Wind turbines convert kinetic energy into electricity.",
        {"lang": "en", "year": 2017, "tag": "energy"},
    ),
    (
        "ocean",
        "d-ocean",
        "Oceans",
        "Coral reefs bleach when sea temperatures rise.",
        {"lang": "fr", "year": 2016, "tag": "nature"},
    ),
    (
        "chunk-a",
        "d-long",
        "Long report",
        "Chapter one describes the mountain expedition route.",
        {"lang": "en", "year": 2012, "tag": "travel"},
    ),
    (
        "chunk-b",
        "d-long",
        "Long report",
        "Chapter two describes the mountain summit and descent.",
        {"lang": "en", "year": 2012, "tag": "travel"},
    ),
]
SEMANTIC_QUERY = "feline companions dozing"
LEXICAL_QUERY = "zyxquor"
BOTH_QUERY = "solar panel efficiency"


@pytest.fixture(scope="module")
def corpus(es_client, es_url, local_embedder):
    name = f"t-retrieval-{uuid.uuid4().hex[:8]}"
    settings = Settings(es={"url": es_url}, index={"name": name, "replicas": 0})
    IndexManager(es_client, settings, embedder=local_embedder.info).init()
    vectors = local_embedder.embed_documents([f"{title} {text}" for _, _, title, text, _ in CORPUS])
    actions = [
        {
            "_index": f"{name}-write",
            "_id": chunk_id,
            "_source": {
                "id": chunk_id,
                "doc_id": doc_id,
                "chunk": 0,
                "title": title,
                "text": text,
                "metadata": meta,
                "vector": vector,
            },
        }
        for (chunk_id, doc_id, title, text, meta), vector in zip(CORPUS, vectors, strict=True)
    ]
    helpers.bulk(es_client, actions, refresh=True)
    yield settings
    for index in es_client.indices.get(index=f"{name}*", expand_wildcards="all").body:
        es_client.indices.delete(index=index, ignore_unavailable=True)
    quiet = es_client.options(ignore_status=404)
    for template in quiet.indices.get_index_template(name=f"{name}*").body.get(
        "index_templates", []
    ):
        quiet.indices.delete_index_template(name=template["name"])


@pytest.fixture(scope="module")
def client(corpus, local_embedder):
    with SearchClient(corpus, embedder=local_embedder) as search_client:
        yield search_client


# -- what each mode finds ---------------------------------------------------------------------
def test_bm25_finds_lexical_only_match_and_not_semantic_one(client):
    assert client.bm25(LEXICAL_QUERY).ids[:1] == [LEXICAL_ID]
    assert SEMANTIC_ID not in client.bm25(SEMANTIC_QUERY).ids


def test_knn_finds_semantic_only_match(client):
    result = client.knn(SEMANTIC_QUERY, k=3)
    assert result.ids[0] == SEMANTIC_ID
    assert result.hits[0].legs["knn"].rank == 1


@pytest.mark.parametrize("fusion", ["auto", "weighted", "client-rrf", "client-linear"])
def test_hybrid_finds_all_three_kinds(client, fusion):
    assert LEXICAL_ID in client.hybrid(LEXICAL_QUERY, fusion=fusion, k=3).ids
    assert SEMANTIC_ID in client.hybrid(SEMANTIC_QUERY, fusion=fusion, k=3).ids
    assert client.hybrid(BOTH_QUERY, fusion=fusion, k=3).ids[0] == BOTH_ID


@pytest.mark.parametrize("mode", ["bm25", "knn"])
def test_both_way_match_is_top_in_each_leg(client, mode):
    assert client.search(BOTH_QUERY, mode=mode, k=3).ids[0] == BOTH_ID


# -- filters ----------------------------------------------------------------------------------
MODES = [
    {"mode": "bm25"},
    {"mode": "knn"},
    {"mode": "hybrid", "fusion": "weighted"},
    {"mode": "hybrid", "fusion": "client-rrf"},
    {"mode": "hybrid", "fusion": "client-linear"},
]


@pytest.mark.parametrize("options", MODES, ids=lambda o: o.get("fusion", o["mode"]))
def test_filters_exclude_in_every_mode(client, options):
    # the semantic match is lang=en, so `lang!=en` must remove it even where it would rank first
    result = client.search(SEMANTIC_QUERY + " solar", filter="lang!=en", k=5, **options)
    langs = {hit.metadata["lang"] for hit in result.hits}
    assert result.hits and "en" not in langs
    energy = client.search(
        BOTH_QUERY, filter=F.eq("tag", "energy") & F.gte("year", 2020), k=10, **options
    )
    assert {h.id for h in energy.hits} <= {"both", "both-zh"}
    assert BOTH_ID in energy.ids


def test_knn_filter_is_a_prefilter(client):
    # three animal docs; a post-filter over k=3 nearest neighbours of a bread query would lose some
    result = client.knn("how to bake bread", k=3, filter={"tag": "animals"})
    assert len(result.hits) == 3
    assert {h.metadata["tag"] for h in result.hits} == {"animals"}


def test_filter_forms_agree(client):
    as_cli = client.bm25("the", filter=["tag in animals,energy", "!draft", "year>=2021"], k=20)
    as_dict = client.bm25(
        "the",
        filter={"tag": ["animals", "energy"], "draft": {"exists": False}, "year": {"gte": 2021}},
        k=20,
    )
    as_obj = client.bm25(
        "the",
        filter=F.in_("tag", ["animals", "energy"]) & F.missing("draft") & F.gte("year", 2021),
        k=20,
    )
    assert as_cli.ids == as_dict.ids == as_obj.ids
    assert "dog" not in as_cli.ids  # draft


# -- scores -----------------------------------------------------------------------------------
def test_weighted_scores_follow_documented_formula(client):
    w = 0.3
    weighted = client.hybrid("cats and solar panels", fusion="weighted", knn_weight=w, k=10)
    bm25 = {h.id: h.score for h in client.bm25("cats and solar panels", k=50).hits}
    knn = {h.id: h.score for h in client.knn("cats and solar panels", k=50).hits}
    assert len(weighted.hits) == 10
    for hit in weighted.hits:
        expected = w * knn.get(hit.id, 0.0) + (1 - w) * bm25.get(hit.id, 0.0)
        assert hit.score == pytest.approx(expected, rel=1e-4, abs=1e-5), hit.id
    # the kNN part is (1 + cos)/2: inside [0, 1]
    assert all(0.0 <= s <= 1.0 for s in knn.values())


def test_client_rrf_equals_hand_computation(client):
    query = "energy from the sun and wind"
    fused = client.hybrid(query, fusion="client-rrf", k=8, rank_window_size=50)
    bm25_rank = {h.id: i for i, h in enumerate(client.bm25(query, k=50).hits, 1)}
    knn_rank = {h.id: i for i, h in enumerate(client.knn(query, k=50).hits, 1)}
    by_hand = {
        doc: sum(1 / (60 + ranks[doc]) for ranks in (bm25_rank, knn_rank) if doc in ranks)
        for doc in set(bm25_rank) | set(knn_rank)
    }
    expected = sorted(by_hand.items(), key=lambda kv: -kv[1])[:8]
    assert [round(s, 9) for s in (h.score for h in fused.hits)] == [
        round(s, 9) for _, s in expected
    ]
    assert {h.id for h in fused.hits} == {doc for doc, _ in expected}
    for hit in fused.hits:
        if hit.id in bm25_rank:
            assert hit.legs["bm25"].rank == bm25_rank[hit.id]
        if hit.id in knn_rank:
            assert hit.legs["knn"].rank == knn_rank[hit.id]


# -- licence ----------------------------------------------------------------------------------
def test_basic_licence_auto_falls_back_and_forced_server_fusion_is_clear(client):
    caps = client.capabilities()
    if caps.rrf_retriever:
        pytest.skip("this node is licensed for server RRF")
    result = client.hybrid(BOTH_QUERY, explain=True)
    assert result.strategy == AUTO_FALLBACK and result.ids[0] == BOTH_ID
    for fusion in ("rrf", "linear"):
        with pytest.raises(LicenseError) as err:
            client.hybrid(BOTH_QUERY, fusion=fusion)
        message = str(err.value)
        assert "Enterprise" in message and caps.license_type in message and fusion in message


def test_server_refusal_at_run_time_falls_back_once(corpus, local_embedder, es_client, caplog):
    # A probe that wrongly claims server RRF: the node's own answer (400 unknown retriever or
    # 403 licence) must not crash `auto`, and is logged once.
    liar = Capabilities(
        version="9.5.0", license_type="enterprise", modules=frozenset({"x-pack-rank-rrf"})
    )
    with SearchClient(
        corpus, client=es_client, embedder=local_embedder, capabilities=liar
    ) as lying:
        if probe_allows_rrf(es_client):
            pytest.skip("node really supports rrf")
        with caplog.at_level(logging.WARNING, logger="essearch.retrieval"):
            first = lying.hybrid(BOTH_QUERY, explain=True)
            second = lying.hybrid(SEMANTIC_QUERY)
        assert first.strategy == second.strategy == AUTO_FALLBACK
        assert first.ids[0] == BOTH_ID and SEMANTIC_ID in second.ids
        assert any("refused" in note for note in first.explain.notes)
        assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1
    with SearchClient(
        corpus, client=es_client, embedder=local_embedder, capabilities=liar
    ) as forced:
        with pytest.raises(CapabilityError) as err:
            forced.hybrid(BOTH_QUERY, fusion="rrf")
        assert "Reciprocal Rank Fusion" in str(err.value)


def probe_allows_rrf(es_client) -> bool:
    from essearch.es import probe

    return probe(es_client).rrf_retriever


# -- results ----------------------------------------------------------------------------------
def test_hits_carry_source_highlights_and_no_vectors(client):
    result = client.hybrid(BOTH_QUERY, fusion="client-rrf", k=3)
    top = result.hits[0]
    assert top.title == "Solar panel efficiency" and top.doc_id == "d-both"
    assert "vector" not in top.source
    assert "<em>" in top.snippet()
    assert top.legs["bm25"].rank == 1 and top.legs["knn"].rank == 1


def test_collapse_groups_chunks_by_parent(client):
    loose = client.bm25("chapter mountain describes", k=5)
    assert {"chunk-a", "chunk-b"} <= set(loose.ids)
    for options in (
        {"mode": "bm25"},
        {"mode": "knn"},
        {"mode": "hybrid", "fusion": "client-rrf"},
        {"mode": "hybrid", "fusion": "weighted"},
    ):
        grouped = client.search("chapter mountain describes", collapse=True, k=5, **options)
        doc_ids = [h.doc_id for h in grouped.hits]
        assert len(doc_ids) == len(set(doc_ids)) and "d-long" in doc_ids, options


def test_explain_has_bodies_and_timings(client):
    query = f"explain me {uuid.uuid4().hex[:6]}"
    first = client.hybrid(query, fusion="client-rrf", explain=True)
    bm25_leg, knn_leg = first.explain.requests  # default window: highlighted in the BM25 leg
    assert "knn" in knn_leg and "query" in bm25_leg
    assert "highlight" in bm25_leg and "highlight" not in knn_leg
    wide = client.hybrid(query, fusion="client-rrf", explain=True, rank_window_size=100)
    legs, highlight = wide.explain.requests[:2], wide.explain.requests[2:]
    assert all("highlight" not in leg for leg in legs)  # a wide window: only the page is
    assert len(highlight) == 1
    assert highlight[0]["query"]["bool"]["filter"] == [{"ids": {"values": wide.ids}}]
    timings = first.explain.timings
    assert timings.embedding_ms > 0 and timings.es_took_ms >= 0
    assert timings.total_ms >= timings.embedding_ms + timings.fusion_ms
    second = client.hybrid(query, fusion="client-rrf", explain=True)
    assert second.explain.timings.embedding_ms == 0
    assert "query embedding from cache" in second.explain.notes
    assert second.ids == first.ids


def test_from_size_pages_within_window(client):
    full = client.hybrid("energy", fusion="client-rrf", k=6)
    page = client.hybrid("energy", fusion="client-rrf", k=3, from_=3)
    assert page.ids == full.ids[3:6]
    assert [h.rank for h in page.hits] == [4, 5, 6]
    bm25_page = client.bm25("the", k=2, from_=2)
    assert bm25_page.ids == client.bm25("the", k=4).ids[2:4]


def test_knn_beyond_10000_is_a_clear_error(client):
    with pytest.raises(SearchError, match="10,000"):
        client.knn("x", k=10, from_=9_995)


def test_model_guard_refuses_other_embedder(corpus, local_embedder, es_client):
    class OtherModel:
        """Same vectors, but claims another model: the guard must refuse before searching."""

        def __init__(self, inner):
            self.inner = inner

        @property
        def info(self):
            from dataclasses import replace

            return replace(self.inner.info, model="some-other-model")

        def embed_query(self, text):
            return self.inner.embed_query(text)

        def close(self):
            pass

    with SearchClient(corpus, client=es_client, embedder=OtherModel(local_embedder)) as other:
        with pytest.raises(ModelMismatchError, match="some-other-model"):
            other.knn("cats")
        assert other.bm25(LEXICAL_QUERY).ids[0] == LEXICAL_ID  # BM25 needs no model


def test_missing_index_is_a_search_error(es_url, local_embedder):
    settings = Settings(es={"url": es_url}, index={"name": f"t-missing-{uuid.uuid4().hex[:6]}"})
    with SearchClient(settings, embedder=local_embedder) as missing:
        with pytest.raises(SearchError, match="not found"):
            missing.bm25("x")
        with pytest.raises(SearchError, match="not found"):
            missing.knn("x")


# -- async ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [*MODES, {"mode": "hybrid", "fusion": "auto"}],
    ids=lambda o: o.get("fusion", o["mode"]),
)
async def test_async_returns_the_same_as_sync(client, corpus, local_embedder, options):
    query, flt = "cats sleeping and solar energy", "year>=2016"
    expected = client.search(query, filter=flt, k=6, **options)
    async with AsyncSearchClient(corpus, embedder=local_embedder) as aclient:
        got = await aclient.search(query, filter=flt, k=6, **options)
    assert got.strategy == expected.strategy
    assert got.ids == expected.ids
    assert [h.score for h in got.hits] == pytest.approx([h.score for h in expected.hits])


# -- deep paging ------------------------------------------------------------------------------
def test_scan_pages_past_many_pages(es_client, settings_for, index_name, local_embedder):
    settings = settings_for(index_name)
    IndexManager(es_client, settings, embedder=local_embedder.info).init()
    words = ["alpha", "beta", "gamma", "delta"]
    actions = [
        {
            "_index": f"{index_name}-write",
            "_id": f"c{i}",
            "_source": {
                "id": f"c{i}",
                "doc_id": f"d{i}",
                "title": f"item {i}",
                "text": " ".join(["common"] * (1 + i % 7) + [words[i % 4]]),
                "metadata": {"group": words[i % 4], "n": i},
            },
        }
        for i in range(230)
    ]
    helpers.bulk(es_client, actions, refresh=True)
    with SearchClient(settings, embedder=local_embedder) as scanner:
        hits = list(scanner.scan("common", page_size=20))  # 12 pages
        assert len(hits) == 230 and len({h.id for h in hits}) == 230
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert [h.rank for h in hits] == list(range(1, 231))
        filtered = list(scanner.scan(filter="group=beta", page_size=7))  # no text: filter listing
        assert len(filtered) == sum(1 for i in range(230) if i % 4 == 1)
        assert {h.metadata["group"] for h in filtered} == {"beta"}
        with pytest.raises(SearchError, match="scan"):
            list(scanner.scan("x", mode="knn"))


async def test_async_scan_matches_sync(client):
    expected = [h.id for h in client.scan("the", page_size=3)]
    async with AsyncSearchClient(client.settings, embedder=client.embedder) as aclient:
        got = [h.id async for h in aclient.scan("the", page_size=3)]
    assert got == expected and len(got) > 3


# -- CLI --------------------------------------------------------------------------------------
def _cli_env(settings: Settings) -> dict[str, str]:
    return {"ESSEARCH_ES_URL": settings.es.url[0], "ESSEARCH_INDEX_NAME": settings.index.name}


def test_cli_search_json_and_table(corpus):
    import json

    from click.testing import CliRunner

    from essearch.cli import main

    runner = CliRunner()
    env = _cli_env(corpus)
    result = runner.invoke(
        main,
        [
            "search",
            BOTH_QUERY,
            "--fusion",
            "client-rrf",
            "-k",
            "3",
            "--filter",
            "lang=zh",
            "--json",
            "--explain",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["strategy"] == "client-rrf"
    assert data["hits"][0]["id"] == "both-zh"
    assert all(h["source"]["metadata"]["lang"] == "zh" for h in data["hits"])
    assert data["explain"]["requests"][1]["knn"]["filter"] == {"term": {"metadata.lang": "zh"}}

    table = runner.invoke(main, ["search", LEXICAL_QUERY, "--mode", "bm25"], env=env)
    assert table.exit_code == 0, table.output
    assert "Network notes" in table.output and "zyxquor" in table.output

    forced = runner.invoke(main, ["search", BOTH_QUERY, "--fusion", "rrf"], env=env)
    if not probe_allows_rrf_url(corpus):
        assert forced.exit_code == 1
        assert "Enterprise" in forced.output and "Traceback" not in forced.output


def probe_allows_rrf_url(settings: Settings) -> bool:
    from essearch.es import make_client, probe

    with make_client(settings) as es:
        return probe(es).rrf_retriever


@pytest.mark.parametrize("window", [20, 100])
def test_client_fusion_highlights_bm25_matches(client, window):
    """Highlighted in the leg (small window) or by a follow-up (wide window): same result."""
    result = client.hybrid("energy", fusion="client-rrf", k=4, rank_window_size=window)
    matched = [h for h in result.hits if h.bm25 is not None]
    assert matched and all(h.highlights for h in matched)
    assert all(not h.highlights for h in result.hits if h.bm25 is None)
    assert any("<em>" in frag for h in matched for frags in h.highlights.values() for frag in frags)
