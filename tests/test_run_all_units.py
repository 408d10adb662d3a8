"""benchmarks/run_all.py's pure parts: which sets `all` means, the one table, the goals, and
that parts not run keep their old RESULTS.md sections."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(name: str, ndcg: dict[str, float]) -> dict:
    rows = [
        {
            "label": label,
            "fusion": "auto" if label == "hybrid/auto" else None,
            "strategy": "client-linear" if label.startswith("hybrid") else label,
            "metrics": {"ndcg@10": v, "recall@100": 0.9, "mrr@10": 0.5},
            "latency": {"p50_ms": 10.0, "p95_ms": 20.0},
        }
        for label, v in ndcg.items()
    ]
    return {"dataset": name, "metrics": ["ndcg@10", "recall@100", "mrr@10"], "results": rows}


def test_all_means_every_beir_folder_with_the_tuning_set_first(tmp_path: Path):
    run_all = load_run_all()
    for name in ("cisi", "scifact", "arguana"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "corpus.jsonl").write_text("{}\n")
    (tmp_path / "notes").mkdir()  # no corpus: not a set
    assert [p.name for p in run_all.find_sets(tmp_path, "all")] == ["scifact", "arguana", "cisi"]
    assert [p.name for p in run_all.find_sets(tmp_path, "cisi, arguana")] == ["cisi", "arguana"]


def test_goals_flag_a_set_where_the_default_loses_or_knn_strays_from_exact():
    run_all = load_run_all()
    good = report("scifact", {"bm25": 0.64, "knn": 0.66, "knn/flat": 0.665, "hybrid/auto": 0.74})
    bad = report("drcd", {"bm25": 0.80, "knn": 0.30, "knn/flat": 0.33, "hybrid/auto": 0.70})
    lines = run_all.goals_table([good, bad])
    scifact = next(line for line in lines if line.startswith("| scifact"))
    drcd = next(line for line in lines if line.startswith("| drcd"))
    assert "0.7400 | 0.6600 | yes" in scifact and "-0.0050 | yes" in scifact
    assert "0.7000 | 0.8000 | **NO**" in drcd and "-0.0300 | **NO**" in drcd
    assert "SciFact default hybrid nDCG@10 >= 0.73: 0.7400 (met)" in lines[-1]
    table = "\n".join(run_all.all_sets_table([good, bad, {"dataset": "x", "failed": "boom"}]))
    assert "| drcd | **hybrid/auto (default)** | client-linear | 0.7000 |" in table
    assert "| x | not measured: boom |" in table
    json.dumps(lines)  # plain strings


def test_sections_of_parts_not_run_are_kept():
    run_all = load_run_all()
    old = "\n".join(
        [
            "# essearch benchmark results",
            "## Machine and versions",
            "- old machine",
            "## Embedders (local MiniLM, CPU)",
            "embedder figures",
            "## Retrieval quality on SciFact (development set)",
            "old eval",
            "## Generalisation check: cisi (evaluation only, same defaults)",
            "old cisi",
        ]
    )
    merged = run_all.merge_sections(old, {"eval": ["## Retrieval quality: all sets", "new"]})
    assert merged[:2] == ["## Embedders (local MiniLM, CPU)", "embedder figures"]
    assert "new" in merged
    assert not any("old" in line for line in merged)
