"""Pure parts of the evaluation runner: which specs run on a cluster, what `auto` resolves to,
and the progress lines a background run prints."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from essearch.es.capabilities import Capabilities
from essearch.eval.progress import PhaseProgress
from essearch.eval.runner import RunSpec, resolved_auto, runnable_specs, specs_for

BASIC = Capabilities(version="9.5.4", license_type="basic", modules=frozenset({"x-pack-rank-rrf"}))
LICENSED = Capabilities(
    version="9.2.0", license_type="enterprise", modules=frozenset({"x-pack-rank-rrf"})
)


def test_server_fusions_are_left_out_with_a_note_where_unlicensed_and_auto_runs_last():
    specs = specs_for(["bm25", "hybrid"], ["auto", "rrf", "linear", "client-linear", "weighted"])
    kept, notes = runnable_specs(specs, BASIC)
    assert [s.label for s in kept] == [
        "bm25",
        "hybrid/client-linear",
        "hybrid/weighted",
        "hybrid/auto",
    ]
    assert len(notes) == 2 and all("licence" in n and "not run" in n for n in notes)
    kept, notes = runnable_specs(specs, LICENSED)
    assert notes == [] and [s.label for s in kept][-1] == "hybrid/auto" and len(kept) == 6


def test_auto_resolves_to_the_fusion_this_cluster_gets_with_the_same_params():
    auto = RunSpec("hybrid", "auto", (("knn_weight", 0.4),))
    assert resolved_auto(auto, BASIC) == RunSpec("hybrid", "client-linear", (("knn_weight", 0.4),))
    assert resolved_auto(auto, LICENSED).fusion == "linear"


def test_exact_knn_spec_label():
    assert RunSpec("knn", None, (), "flat").label == "knn/flat"


def test_progress_lines_when_not_on_a_terminal():
    out = StringIO()
    progress = PhaseProgress(Console(file=out, width=200), prefix="scifact: ", live=False)
    progress.phase("embed queries", 0, 300, "290 from the embedding cache")
    for done in range(1, 301):
        progress.phase("embed queries", done, 300)
    view = progress.ingest_view("index (flat)")
    view.start(10)
    view.update({"documents": 10, "chunks": 12, "embedded": 12, "indexed": 12, "failed": 0})
    lines = out.getvalue().splitlines()
    # a start line and an end line per phase, nothing in between within 10 seconds
    assert lines[0].startswith("scifact: embed queries: 0/300 · 290 from the embedding cache")
    assert lines[1].startswith("scifact: embed queries: 300/300")
    assert lines[2].startswith("scifact: index (flat): 0/10")
    assert lines[3].startswith("scifact: index (flat): 10/10 · chunks 12")
    assert len(lines) == 4


def test_an_empty_corpus_document_does_not_make_the_index_incomplete():
    from essearch.eval.index import is_empty_document
    from essearch.ingest.failures import Failure

    assert is_empty_document(Failure("load", "field 'text' is empty", source="corpus.jsonl:471"))
    assert not is_empty_document(Failure("load", "invalid JSON", source="corpus.jsonl:3"))
    assert not is_empty_document(Failure("embed", "field 'text' is empty"))


def test_auto_is_run_on_its_own_where_the_language_guard_reweighs_queries() -> None:
    """`hybrid/auto` may reuse the figures of the strategy it resolves to only when no query
    is reweighed by the language guard: on Chinese queries and an English-only embedder it
    differs (its kNN leg is weighed down), and copying the figures hid that."""
    from essearch.eval.runner import guarded_queries

    queries = ["退款流程是怎样的？", "How long do refunds take?", "退貨需要幾天"]
    assert guarded_queries("sentence-transformers/all-MiniLM-L6-v2", queries) == 2
    assert guarded_queries("BAAI/bge-m3", queries) == 0
    assert guarded_queries("sentence-transformers/all-MiniLM-L6-v2", queries[1:2]) == 0
