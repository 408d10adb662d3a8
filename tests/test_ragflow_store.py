"""ESDocStore against the real node, replaying RAGFlow's call pattern (rag/nlp/search.py)."""

from __future__ import annotations

import math
import random

import pytest

from essearch.errors import CapabilityError, SearchError
from essearch.ragflow import (
    ESDocStore,
    FusionExpr,
    MatchDenseExpr,
    MatchTextExpr,
    OrderByExpr,
)

KB1, KB2 = "kb-one", "kb-two"
QUERY_FIELDS = ["title_tks^10", "important_kwd^30", "content_ltks^2"]
SELECT = [
    "docnm_kwd",
    "content_ltks",
    "content_with_weight",
    "kb_id",
    "doc_id",
    "available_int",
    "page_num_int",
    "important_kwd",
    "tag_kwd",
    "q_384_vec",
]
# (chunk id, kb, doc id, title, content, tags, available)
CHUNKS = [
    ("c-cat", KB1, "doc-a", "Cats", "Cats purr when they are content and relaxed.", ["pets"], 1),
    ("c-dog", KB1, "doc-a", "Dogs", "Dogs bark to warn their owners about strangers.", ["pets"], 1),
    ("c-tea", KB1, "doc-b", "Tea", "Green tea is brewed with water below boiling.", ["food"], 1),
    (
        "c-rust",
        KB1,
        "doc-b",
        "Rust",
        "The borrow checker enforces memory safety in Rust.",
        ["code"],
        1,
    ),
    ("c-sql", KB1, "doc-c", "Indexes", "A btree index speeds up range queries.", ["code"], 1),
    ("c-hidden", KB1, "doc-c", "Cats", "Cats purr loudly at night.", ["pets"], 0),
    ("c-other", KB2, "doc-a", "Cats", "Cats purr in the other dataset too.", ["pets"], 1),
    ("c-other2", KB2, "doc-z", "Rain", "It rains a lot in autumn.", ["weather"], 1),
]


def tokens(text: str) -> str:
    """RAGFlow stores pre-tokenised, space-separated text in *_tks/*_ltks fields."""
    return " ".join("".join(ch for ch in w.lower() if ch.isalnum()) for w in text.split())


def make_rows(embedder, chunks=CHUNKS) -> dict[str, list[dict]]:
    vectors = embedder.embed_documents([c[4] for c in chunks])
    by_kb: dict[str, list[dict]] = {}
    for i, ((cid, kb, doc, title, content, tags, available), vec) in enumerate(
        zip(chunks, vectors, strict=True)
    ):
        by_kb.setdefault(kb, []).append(
            {
                "id": cid,
                "doc_id": doc,
                "docnm_kwd": f"{doc}.pdf",
                "title_tks": tokens(title),
                "content_with_weight": content,
                "content_ltks": tokens(content),
                "important_kwd": [],
                "tag_kwd": tags,
                "page_num_int": [i + 1],
                "top_int": [i],
                "position_int": [i],
                "available_int": available,
                "create_time": "2024-05-01 12:00:00",
                "create_timestamp_flt": 1714564800.0 + i,
                "q_384_vec": vec,
            }
        )
    return by_kb


def cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture
def store(es_client, index_name):
    return ESDocStore(es_client, index_prefix=f"{index_name}_")


@pytest.fixture
def loaded(store, local_embedder):
    idx = store.index_name("tenant1")
    assert store.create_idx(idx, KB1, 384)
    for kb, rows in make_rows(local_embedder).items():
        assert store.insert(rows, idx, kb) == []
    return store, idx


def hybrid(embedder, question: str, text: str, similarity: float = 0.2):
    return [
        MatchTextExpr(QUERY_FIELDS, text, 100, {"minimum_should_match": 0.3}),
        MatchDenseExpr(
            "q_384_vec",
            embedder.embed_query(question),
            "float",
            "cosine",
            1024,
            {"similarity": similarity},
        ),
        FusionExpr("weighted_sum", 64, {"weights": "0.05,0.95"}),
    ]


def test_index_naming_mapping_and_idx_lifecycle(store, es_client, index_name):
    idx = store.index_name("Tenant1")
    assert idx == f"{index_name}_tenant1"
    assert not store.index_exist(idx, "")
    store.create_idx(idx, KB1, 384)
    assert store.index_exist(idx, KB1)
    props = es_client.indices.get_mapping(index=idx)[idx]["mappings"]["properties"]
    assert props["q_384_vec"]["dims"] == 384
    store.delete_idx(idx, KB1)  # a dataset id: the shared tenant index stays
    assert store.index_exist(idx, "")
    store.delete_idx(idx, "")
    assert not store.index_exist(idx, "")
    health = store.health()
    assert health["type"] == "elasticsearch" and health["status"] in ("green", "yellow")
    assert store.db_type() == store.dbType() == "elasticsearch"


def test_insert_reports_bad_rows_per_id_and_writes_the_rest(store, local_embedder, es_client):
    idx = store.index_name("t2")
    store.create_idx(idx, KB1, 384)
    rows = make_rows(local_embedder)[KB1][:3]
    rows.append({**rows[0], "id": "short-vec", "q_384_vec": [0.1] * 10})
    rows.append({"content_ltks": "no id here"})
    rows.append({**rows[1], "id": "bad-date", "create_time": "not a date"})
    rows.append({**rows[1], "_id": "x"})
    errors = store.insert(rows, idx, KB1)
    assert any(e.startswith("short-vec:") and "384" in e for e in errors)
    assert any(e.startswith("row 4:") for e in errors)
    assert any(e.startswith("bad-date:") for e in errors)
    assert any("_id" in e for e in errors)
    assert len(errors) == 4
    assert es_client.count(index=idx)["count"] == 3  # the good rows, visible on return
    assert store.get("c-cat", idx, [KB1])["kb_id"] == KB1
    assert store.get("c-cat", idx, [KB2]) is None  # another dataset's chunk
    assert store.get("missing", idx, [KB1]) is None


def test_ragflow_call_pattern(loaded, local_embedder, es_client):
    store, idx = loaded
    question = "why do cats purr"
    exprs = hybrid(local_embedder, question, "cats purr")
    condition = {"available_int": 1, "doc_id": ["doc-a", "doc-b", "doc-c"]}
    res = store.search(
        SELECT,
        ["content_ltks"],
        condition,
        exprs,
        OrderByExpr(),
        0,
        64,
        idx,
        [KB1],
        agg_fields=["docnm_kwd"],
    )
    ids = store.get_doc_ids(res)
    assert ids[0] == "c-cat"
    assert "c-other" not in ids  # kb_id scoping: KB2's cat chunk never leaks
    assert "c-hidden" not in ids  # available_int=0
    assert store.get_total(res) == len(ids)

    fields = store.get_fields(res, SELECT)
    cat = fields["c-cat"]
    assert cat["kb_id"] == KB1 and cat["docnm_kwd"] == "doc-a.pdf"
    assert cat["available_int"] == 1 and cat["page_num_int"] == [1]
    assert len(cat["q_384_vec"]) == 384
    assert store.getFields(res, ["kb_id"])["c-cat"] == {"kb_id": KB1}

    highlights = store.get_highlight(res, ["cats", "purr"], "content_with_weight")
    assert "<em>Cats</em>" in highlights["c-cat"] and "<em>purr</em>" in highlights["c-cat"]

    buckets = dict(store.get_aggregation(res, "docnm_kwd"))
    assert sum(buckets.values()) == store.get_total(res)
    assert buckets["doc-a.pdf"] >= 1

    # The Dealer's second call: kNN only, restricted to the candidates, similarity 0.
    qv = local_embedder.embed_query(question)
    knn_res = store.search(
        [],
        [],
        {"id": ids},
        [MatchDenseExpr("q_384_vec", qv, "float", "cosine", len(ids), {"similarity": 0.0})],
        OrderByExpr(),
        0,
        len(ids),
        idx,
        [KB1],
    )
    knn_scores = store.get_scores(knn_res)
    cat_vec = local_embedder.embed_documents([CHUNKS[0][4]])[0]
    assert knn_scores["c-cat"] == pytest.approx((1 + cosine(qv, cat_vec)) / 2, abs=2e-3)
    # hybrid score = (1 - 0.95) * text + knn: the text leg adds to the kNN score
    assert store.get_scores(res)["c-cat"] > knn_scores["c-cat"]
    assert store.getScores(res) == store.get_scores(res)

    # update by id (partial), keeping the vector
    assert store.update({"id": "c-cat"}, {"important_kwd": ["feline", "pets"]}, idx, KB1)
    chunk = store.get("c-cat", idx, [KB1])
    assert chunk["important_kwd"] == ["feline", "pets"] and len(chunk["q_384_vec"]) == 384
    assert store.update({"id": "c-cat"}, {"remove": {"important_kwd": "feline"}}, idx, KB1)
    assert store.get("c-cat", idx, [KB1])["important_kwd"] == ["pets"]
    assert not store.update({"id": "c-cat"}, {"important_kwd": ["x"]}, idx, KB2)
    assert store.last_errors and store.last_errors[0].startswith("c-cat:")
    # the boost on important_kwd^30 now matters
    res = store.search(
        SELECT,
        [],
        {"available_int": 1},
        [MatchTextExpr(QUERY_FIELDS, "pets", 10)],
        OrderByExpr(),
        0,
        10,
        idx,
        [KB1],
    )
    assert store.get_doc_ids(res)[0] == "c-cat"

    # update by condition: plain assignment, then a list append (needs the source)
    assert store.update({"doc_id": "doc-b"}, {"available_int": 0}, idx, KB1)
    assert store.update({"doc_id": "doc-b"}, {"add": {"tag_kwd": "reviewed"}}, idx, KB1)
    for cid in ("c-tea", "c-rust"):
        chunk = store.get(cid, idx, [KB1])
        assert chunk["available_int"] == 0
        assert chunk["tag_kwd"][-1] == "reviewed" and len(chunk["q_384_vec"]) == 384
    visible = store.search([], [], {"available_int": 1}, [], OrderByExpr(), 0, 100, idx, [KB1])
    assert set(store.get_doc_ids(visible)) == {"c-cat", "c-dog", "c-sql"}
    # the rewritten chunks are still found by vector
    tea = store.search(
        ["content_with_weight"],
        [],
        {},
        [
            MatchDenseExpr(
                "q_384_vec",
                local_embedder.embed_query("brewing green tea"),
                "float",
                "cosine",
                3,
                {"similarity": 0.3},
            )
        ],
        OrderByExpr(),
        0,
        3,
        idx,
        [KB1],
    )
    assert store.get_doc_ids(tea)[0] == "c-tea"

    # tags aggregation with limit=0 (RAGFlow's all_tags call)
    res = store.search([], [], {}, [], OrderByExpr(), 0, 0, idx, [KB1], ["tag_kwd"])
    tags = dict(store.get_aggregation(res, "tag_kwd"))
    assert tags == {"pets": 3, "food": 1, "code": 2, "reviewed": 2}

    # delete by condition: only KB1's doc-a chunks go, KB2's doc-a chunk stays
    assert store.delete({"doc_id": "doc-a"}, idx, KB1) == 2
    assert store.get("c-other", idx, [KB2]) is not None
    assert store.delete({"id": []}, idx, KB1) == 0  # never "everything"
    assert store.delete({"id": ["c-sql", "c-other"]}, idx, KB1) == 1
    res = store.search([], [], {}, [], OrderByExpr(), 0, 100, idx, [KB1])
    assert set(store.get_doc_ids(res)) == {"c-tea", "c-rust", "c-hidden"}
    assert store.count_idx(idx, KB1) == 3
    assert store.delete({}, idx, KB2) == 2
    assert es_client.count(index=idx)["count"] == 3


def test_semantic_only_query_still_finds_its_chunk(loaded, local_embedder, es_client):
    """RAGFlow #17041/#19949: the text clause must not pre-filter the kNN leg."""
    store, idx = loaded
    question = "felines rumbling sound of happiness"
    exprs = hybrid(local_embedder, question, tokens(question), similarity=0.2)
    res = store.search(SELECT, [], {"available_int": 1}, exprs, OrderByExpr(), 0, 10, idx, [KB1])
    assert store.get_doc_ids(res)[0] == "c-cat"

    # RAGFlow's own body copies the query_string into the kNN filter and loses the chunk.
    qv = local_embedder.embed_query(question)
    qs = {
        "query_string": {
            "fields": QUERY_FIELDS,
            "query": tokens(question),
            "minimum_should_match": "30%",
        }
    }
    bool_q = {"bool": {"must": [qs], "filter": [{"terms": {"kb_id": [KB1]}}], "boost": 0.05}}
    body = {
        "query": bool_q,
        "knn": {
            "field": "q_384_vec",
            "k": 64,
            "num_candidates": 128,
            "query_vector": qv,
            "filter": bool_q,
            "similarity": 0.2,
        },
        "size": 10,
    }
    ragflow_ids = [h["_id"] for h in es_client.search(index=idx, body=body)["hits"]["hits"]]
    assert "c-cat" not in ragflow_ids


def test_order_by_missing_fields_and_rank_features(store, local_embedder):
    idx = store.index_name("t3")
    store.create_idx(idx, KB1, 384)
    rows = make_rows(local_embedder)[KB1]
    rows[0]["pagerank_fea"] = 5
    twin = {**rows[0], "id": "c-cat-twin", "pagerank_fea": 1, "page_num_int": [99]}
    assert store.insert([*rows, twin], idx, KB1) == []

    order = OrderByExpr().desc("page_num_int").asc("never_seen_int").asc("nothing_kwd")
    res = store.search(["page_num_int"], [], {}, [], order, 0, 3, idx, [KB1])
    pages = [f["page_num_int"][0] for f in store.get_fields(res, ["page_num_int"]).values()]
    assert pages == sorted(pages, reverse=True) and pages[0] == 99

    text = [MatchTextExpr(["content_ltks"], "cats purr", 10)]
    plain = store.get_scores(store.search([], [], {}, text, OrderByExpr(), 0, 10, idx, [KB1]))
    assert plain["c-cat"] == pytest.approx(plain["c-cat-twin"])
    res = store.search(
        [], [], {}, text, OrderByExpr(), 0, 10, idx, [KB1], rank_feature={"pagerank_fea": 10}
    )
    boosted = store.get_scores(res)
    assert store.get_doc_ids(res)[:2] == ["c-cat", "c-cat-twin"]
    assert boosted["c-cat"] - boosted["c-cat-twin"] == pytest.approx(10 * (5 - 1), rel=1e-3)


def test_large_vectors_of_any_dimension(store, es_client):
    idx = store.index_name("big")
    store.create_idx(idx, KB1, 3072)
    rng = random.Random(7)
    rows = []
    for i in range(20):
        rows.append(
            {
                "id": f"b{i}",
                "content_ltks": f"doc {i}",
                "q_3072_vec": [rng.uniform(-1, 1) for _ in range(3072)],
                "q_1000_vec": [rng.uniform(-1, 1) for _ in range(1000)],  # first sight: mapped
            }
        )
    assert store.insert(rows, idx, KB1) == []
    props = es_client.indices.get_mapping(index=idx)[idx]["mappings"]["properties"]
    assert props["q_3072_vec"]["dims"] == 3072 and props["q_1000_vec"]["dims"] == 1000
    for field in ("q_3072_vec", "q_1000_vec"):
        target = rows[11][field]
        res = store.search(
            ["id"],
            [],
            {},
            [MatchDenseExpr(field, target, "float", "cosine", 5, {"similarity": 0.5})],
            OrderByExpr(),
            0,
            5,
            idx,
            [KB1],
        )
        assert store.get_doc_ids(res) == ["b11"]  # random vectors: only itself is that close
        assert store.get_scores(res)["b11"] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(SearchError, match="3072"):
        store.search(
            [], [], {}, [MatchDenseExpr("q_3072_vec", [0.1] * 10)], OrderByExpr(), 0, 5, idx, [KB1]
        )


def test_sql_needs_the_sql_module(store):
    if store.capabilities.has_component("sql"):
        pytest.skip("this cluster has SQL")
    with pytest.raises(CapabilityError, match="sql"):
        store.sql("select docnm_kwd from x where content_ltks = 'cats'", 10, "json")


DEEP_DOCS = 10_050


def test_offsets_beyond_ten_thousand(store):
    idx = store.index_name("deep")
    store.create_idx(idx, KB1, 8)
    rng = random.Random(3)
    rows = [
        {
            "id": f"d{i:05d}",
            "seq_int": i,
            "content_ltks": "common " + ("even" if i % 2 == 0 else "odd"),
            "q_8_vec": [rng.uniform(-1, 1) for _ in range(8)],
        }
        for i in range(DEEP_DOCS)
    ]
    assert store.insert(rows, idx, KB1) == []
    # one segment, no later merges: equal-score ties keep one order across requests
    store.client.indices.forcemerge(index=idx, max_num_segments=1)

    # sorted filter search past the window
    res = store.search(
        ["seq_int"], [], {}, [], OrderByExpr().asc("seq_int"), 10_010, 20, idx, [KB1]
    )
    assert store.get_doc_ids(res) == [f"d{i:05d}" for i in range(10_010, 10_030)]
    assert store.get_total(res) == DEEP_DOCS

    # text search ranked by score, paged past the window: pages don't overlap and run out
    text = [MatchTextExpr(["content_ltks"], "common", 100)]
    page1 = store.search([], [], {}, text, OrderByExpr(), 10_000, 30, idx, [KB1])
    page2 = store.search([], [], {}, text, OrderByExpr(), 10_030, 30, idx, [KB1])
    ids1, ids2 = store.get_doc_ids(page1), store.get_doc_ids(page2)
    assert len(ids1) == 30 and len(ids2) == DEEP_DOCS - 10_030
    assert not set(ids1) & set(ids2)
    first = store.search([], [], {}, text, OrderByExpr(), 0, 10_000, idx, [KB1])
    assert not set(store.get_doc_ids(first)) & (set(ids1) | set(ids2))

    # kNN alone reaches its 10,000 nearest neighbours, and says so beyond
    dense = MatchDenseExpr("q_8_vec", rows[0]["q_8_vec"], "float", "cosine", 100)
    res = store.search([], [], {}, [dense], OrderByExpr(), 9_990, 10, idx, [KB1])
    assert len(store.get_doc_ids(res)) == 10
    with pytest.raises(SearchError, match="10,000 nearest"):
        store.search([], [], {}, [dense], OrderByExpr(), 10_000, 10, idx, [KB1])

    # hybrid pages past the window through the text leg
    fusion = FusionExpr("weighted_sum", 100, {"weights": "0.05,0.95"})
    res = store.search([], [], {}, [text[0], dense, fusion], OrderByExpr(), 10_030, 30, idx, [KB1])
    assert len(store.get_doc_ids(res)) == DEEP_DOCS - 10_030
    assert store.get_total(res) == DEEP_DOCS
