"""End to end on a tiny BEIR set written here: real node, real MiniLM, ranx metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from essearch.eval.runner import evaluate_dataset

DOCS = {
    "d1": ("Photosynthesis", "Plants convert sunlight into chemical energy using chlorophyll."),
    "d2": ("Volcanoes", "Magma rises through the crust and erupts as lava from volcanic vents."),
    "d3": ("Coffee", "Roasted coffee beans are ground and brewed with hot water."),
    "d4": ("Espresso", "Espresso forces pressurised hot water through finely ground coffee."),
    "d5": ("Jupiter", "Jupiter is the largest planet of the solar system, a gas giant."),
    "d6": ("Penguins", "Penguins are flightless birds that swim in cold southern oceans."),
    "d7": ("Bicycles", "A bicycle has two wheels, pedals and a chain driving the rear wheel."),
    "d8": ("Glaciers", "Glaciers are slow rivers of ice that carve valleys over millennia."),
    "d9": ("Vaccines", "Vaccines train the immune system to recognise a pathogen."),
    "d10": ("Chess", "Chess is a board game where each player starts with sixteen pieces."),
    "d11": ("Bread", "Yeast ferments the dough, producing gas that makes bread rise."),
    "d12": ("Tides", "Ocean tides are caused by the gravitational pull of the moon."),
    "d13": ("Zymurgy", "Zymurgy is the branch of chemistry that studies fermentation."),
}
QUERIES = {
    "q1": "zymurgy",  # exact keyword, only in d13
    "q2": "how do plants turn light into energy",
    "q3": "what makes the sea level rise and fall every day",
    "q4": "biggest planet orbiting the sun",
    "d3": DOCS["d3"][1],  # the query text is document d3 itself (ArguAna-style)
}
QRELS = {"q1": ["d13"], "q2": ["d1"], "q3": ["d12"], "q4": ["d5"], "d3": ["d4"]}


def write_dataset(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as out:
        for doc_id, (title, text) in DOCS.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as out:
        for query_id, text in QUERIES.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
        out.write(json.dumps({"_id": "unjudged", "text": "never evaluated"}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t1" for q, docs in QRELS.items() for d in docs]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


def test_eval_end_to_end(tiny_beir, index_name, settings_for, es_client, es_url, local_embedder):
    settings = settings_for(index_name)
    report = evaluate_dataset(
        str(tiny_beir),
        settings=settings,
        modes=["bm25", "knn", "hybrid"],
        fusions=["auto", "client-linear"],
        self_hits="keep",
        client=es_client,
        embedder=local_embedder,
        index_prefix=index_name,
    )
    assert report.queries == 5  # "unjudged" is left out
    assert report.self_hit_queries == 1  # query "d3" is document d3
    assert report.index["documents"] == len(DOCS)
    assert report.index["reused"] is False
    assert report.metrics == ["ndcg@10", "recall@100", "mrr@10"]
    # each query embedded once into the client's cache, then every run hits that cache
    assert report.latency_includes_embedding is False
    assert report.query_embedding["p50_ms"] > 0
    by_label = {r.label: r for r in report.results}
    assert set(by_label) == {"bm25", "knn", "hybrid/auto", "hybrid/client-linear"}
    if not es_client_caps(es_client).rrf_retriever:  # Basic: auto is client-side linear fusion
        auto = by_label["hybrid/auto"]
        assert auto.strategy == "client-linear" and auto.same_as == "hybrid/client-linear"
        assert auto.rankings == by_label["hybrid/client-linear"].rankings
    for result in report.results:
        assert result.errors == 0, result.first_error
        assert result.queries == 5
        for name, value in result.metrics.items():
            assert 0.0 <= value <= 1.0, (result.label, name, value)
        assert 0 < result.latency["p50_ms"] <= result.latency["p95_ms"]
    bm25 = by_label["bm25"]
    assert bm25.rankings["q1"][0] == "d13"  # the exact keyword is found first
    assert bm25.rankings["d3"][0] == "d3"  # the self-hit is kept when asked
    assert by_label["knn"].rankings["q4"][0] == "d5"  # semantic match without shared words
    assert by_label["knn"].metrics["recall@100"] == 1.0  # 13 docs, depth 100: all retrieved
    assert by_label["hybrid/client-linear"].metrics["ndcg@10"] > 0.5

    again = evaluate_dataset(
        str(tiny_beir),
        settings=settings,
        modes=["bm25"],
        client=es_client,
        embedder=local_embedder,
        index_prefix=index_name,
    )
    assert again.index["reused"] is True
    assert again.index["name"] == report.index["name"]
    dropped = again.results[0]  # the default (auto) drops the query's own document, as BEIR
    assert again.self_hits == "auto"
    assert "d3" not in dropped.rankings["d3"]
    assert dropped.rankings["d3"][0] == "d4"  # espresso shares "coffee", "hot water"
    assert dropped.metrics["mrr@10"] > bm25.metrics["mrr@10"]

    # The CLI reuses the same index (same corpus, embedder, analyzer) and writes the results file.
    from essearch.cli import main

    output = tiny_beir.parent / "results.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--dataset",
            str(tiny_beir),
            "--modes",
            "bm25,knn",
            "--index-prefix",
            index_name,
            "--self-hits",
            "keep",
            "--no-cache",
            "--json",
            "--output",
            str(output),
            "--quiet",
        ],
        env={"ESSEARCH_ES_URL": es_url},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(output.read_text())
    assert json.loads(result.output)["results"] == data["results"]
    assert data["index"]["reused"] is True
    assert [r["label"] for r in data["results"]] == ["bm25", "knn"]
    assert data["results"][0]["metrics"] == bm25.metrics


def es_client_caps(es_client):
    from essearch.es import probe

    return probe(es_client)


def test_eval_cache_exact_knn_and_progress(
    tiny_beir, tmp_path, index_name, settings_for, es_client, local_embedder
):
    """A rebuilt index and the flat twin re-embed nothing: every vector comes from the cache
    file; every phase reports progress."""
    from io import StringIO

    from rich.console import Console

    from essearch.eval.progress import PhaseProgress

    cache = tmp_path / "work" / "embeddings.sqlite"
    settings = settings_for(index_name)
    first = evaluate_dataset(
        str(tiny_beir),
        settings=settings,
        modes=["knn"],
        client=es_client,
        embedder=local_embedder,
        embedding_cache=cache,
        index_prefix=index_name,
    )
    chunks = first.index["chunks"]
    assert first.embedding_cache["path"] == str(cache)
    # every chunk and query missed once (texts are unique here), nothing hit
    assert first.embedding_cache["misses"] == chunks + 5 and first.embedding_cache["hits"] == 0
    assert first.query_vectors == {"cached": 0, "embedded": 5}

    out = StringIO()
    progress = PhaseProgress(Console(file=out, width=200), prefix="tiny: ", live=False)
    again = evaluate_dataset(
        str(tiny_beir),
        settings=settings,
        modes=["bm25", "knn"],
        exact_knn=True,
        rebuild=True,
        client=es_client,
        embedder=local_embedder,
        embedding_cache=cache,
        index_prefix=index_name,
        progress=progress,
    )
    assert again.index["reused"] is False and again.exact_index is not None
    assert again.exact_index["name"] != again.index["name"]
    assert again.exact_index["name"].startswith(index_name)
    # rebuilt index + flat twin: 2 x chunks document lookups, all hits; queries from the cache
    assert again.embedding_cache == {"path": str(cache), "hits": 2 * chunks, "misses": 0}
    assert again.query_vectors == {"cached": 5, "embedded": 0}
    by_label = {r.label: r for r in again.results}
    assert [r.label for r in again.results] == ["bm25", "knn", "knn/flat"]
    assert by_label["knn/flat"].index == f"{again.exact_index['name']}"
    # 13 documents: HNSW finds every neighbour; int8 quantisation may swap near-ties, not more
    flat, approx = by_label["knn/flat"], by_label["knn"]
    for query_id, ranking in flat.rankings.items():
        assert set(ranking) == set(approx.rankings[query_id])
    assert abs(flat.metrics["ndcg@10"] - approx.metrics["ndcg@10"]) <= 0.05
    lines = out.getvalue()
    for phase in (
        "tiny: load",
        "tiny: index (int8_hnsw)",
        "tiny: index (flat, exact kNN)",
        "tiny: embed queries",
        "tiny: bm25: 5/5",
        "tiny: knn/flat: 5/5",
    ):
        assert phase in lines, (phase, lines)


def test_eval_sweep_reports_best_per_metric(
    tiny_beir, index_name, settings_for, es_client, local_embedder
):
    report = evaluate_dataset(
        str(tiny_beir),
        settings=settings_for(index_name),
        modes=["hybrid"],
        fusions=["client-linear"],
        sweep=True,
        sweep_fusions=["client-linear", "client-rrf"],
        sweep_grid={"knn_weights": [0.2, 0.8], "rank_constants": [5], "num_candidates": [50]},
        client=es_client,
        embedder=local_embedder,
        index_prefix=index_name,
    )
    labels = [r.label for r in report.sweep]
    assert labels == [
        "hybrid/client-linear[knn_weight=0.2,num_candidates=50]",
        "hybrid/client-linear[knn_weight=0.8,num_candidates=50]",
        "hybrid/client-rrf[num_candidates=50,rank_constant=5]",
    ]
    for name in report.metrics:
        best = report.best[name]
        assert best["value"] == max(r.metrics[name] for r in report.sweep)
        assert best["label"] in labels


def test_eval_cli_rejects_unknown_mode(tiny_beir) -> None:
    from essearch.cli import main

    result = CliRunner().invoke(main, ["eval", "--dataset", str(tiny_beir), "--modes", "bm26"])
    assert result.exit_code != 0
    assert "bm26" in result.output


def test_eval_measures_a_run_with_rerank(
    tiny_beir, index_name, settings_for, es_client, local_embedder, httpserver
):
    """`rerank=True` adds a reranked twin of each run; the server's order is what gets scored."""
    from werkzeug import Request, Response

    from essearch.settings import RerankSettings

    relevant_text = {DOCS[d][1] for docs in QRELS.values() for d in docs}

    def oracle(request: Request) -> Response:  # a TEI /rerank that knows the answers
        body = request.get_json()
        scores = [1.0 if text in relevant_text else 0.0 for text in body["texts"]]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        return Response(json.dumps([{"index": i, "score": scores[i]} for i in ranked]))

    httpserver.expect_request("/rerank").respond_with_handler(oracle)
    settings = settings_for(index_name).model_copy(
        update={"rerank": RerankSettings(provider="tei", base_url=httpserver.url_for(""))}
    )
    report = evaluate_dataset(
        str(tiny_beir),
        settings=settings,
        modes=["bm25"],
        self_hits="keep",
        rerank=True,
        client=es_client,
        embedder=local_embedder,
        index_prefix=index_name,
    )
    by_label = {r.label: r for r in report.results}
    assert set(by_label) == {"bm25", "bm25[rerank=True]"}
    reranked = by_label["bm25[rerank=True]"]
    assert reranked.errors == 0 and httpserver.log  # the reranker was really asked
    # the oracle puts a relevant document first wherever BM25 retrieved one
    assert reranked.metrics["mrr@10"] >= by_label["bm25"].metrics["mrr@10"]
    assert reranked.rankings["d3"][0] == "d4"  # BM25 ranks the self-hit d3 first; the oracle d4
