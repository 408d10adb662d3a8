"""Reproduce every published figure in one command and write benchmarks/RESULTS.md.

    python benchmarks/run_all.py --data ../shared/data --sets all --es-url http://127.0.0.1:19200

Runs, each as a subprocess whose exact command is recorded:
  1. benchmarks/bench_embedders.py  (ONNX vs torch texts/s and SciFact quality, query latency,
     remote concurrency, cache hits)
  2. benchmarks/bench_ingest.py     (ingest issue: essearch vs raw parallel_bulk, end to end, RSS)
  3. benchmarks/bench_search.py     (retrieval issue: essearch vs raw client latency)
  4. essearch eval on every set of --sets (`all`: every BEIR folder under --data), with the
     same defaults everywhere: BM25, kNN, exact kNN on a `flat` twin of the same vectors, every
     hybrid fusion the cluster runs and the default (`auto`); then ONE table of all sets and the
     goals (default hybrid >= max(BM25, kNN), kNN within 0.01 of exact kNN, SciFact >= 0.73).

Only the parts run are rewritten in RESULTS.md; the sections of the others are kept. Evaluation
indices are reused across runs (same corpus file and embedder) and every vector is kept in the
embedding cache (--cache), so a warm re-run embeds nothing. Each evaluation's progress streams to
stderr while it runs.

Convention for the benchmark scripts: each prints its figures (with ratios against a baseline
measured in the same run). When a script's --help lists `--json-out PATH`, it is passed and the JSON
figures are embedded in RESULTS.md; in any case its stdout is recorded verbatim.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # an editable install maps only the packages known at install time
    sys.path.insert(0, str(ROOT))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PARTS = ("embedders", "ingest", "search", "eval")
#: Every hybrid fusion; `essearch eval` leaves out (with a note) the server ones the cluster lacks.
HYBRID_FUSIONS = "auto,rrf,linear,weighted,client-rrf,client-linear"
#: The development set (the only one defaults are tuned on) and its goal for the default hybrid.
TUNING_SET = "scifact"
TUNING_GOAL = 0.73
#: How close kNN (the index's vector type) must come to exact kNN (flat), nDCG@10.
EXACT_KNN_TOLERANCE = 0.01
#: Section headings of each part in RESULTS.md (a part not run keeps its old sections).
HEADINGS = {
    "embedders": "## Embedders",
    "ingest": "## Ingest",
    "search": "## Search latency",
    "eval": "## Retrieval quality",
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def es_version(url: str | None) -> str:
    if not url:
        return "unknown (no --es-url)"
    try:
        from elasticsearch import Elasticsearch

        from essearch.es import probe

        client = Elasticsearch(url, request_timeout=30)
        try:
            caps = probe(client)
            return f"{caps.version} (licence {caps.license_type})"
        finally:
            client.close()
    except Exception as exc:  # the report still gets written
        return f"unknown ({type(exc).__name__}: {exc})"


def gpu_note() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"CUDA GPU present: {torch.cuda.get_device_name(0)} (GPU figures not run here)"
    except Exception:
        pass
    return (
        "No GPU machine was available for this run: the optional GPU figures (embedder texts/s "
        "on a GPU, SciFact ingest time with GPU embeddings) are not measured."
    )


def measured_on() -> str:
    """When and on what CPU a section was measured: sections kept from earlier runs may come
    from another machine (these are shared hosts: the CPU model changes between sessions)."""
    return (
        f"Measured {datetime.now(UTC).isoformat(timespec='seconds')} on {os.cpu_count()} CPUs "
        f"({cpu_model()}), torch {package_version('torch')}."
    )


def machine_section(es_url: str | None) -> list[str]:
    return [
        "## Machine and versions",
        "",
        "The latest run's; each section says when and on what CPU it was measured.",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu_model()}), "
        f"{memory_gib()} RAM, {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, essearch {package_version('essearch')}, "
        f"elasticsearch-py {package_version('elasticsearch')}, torch {package_version('torch')}, "
        f"sentence-transformers {package_version('sentence-transformers')}, "
        f"ranx {package_version('ranx')}",
        f"- Elasticsearch: {es_version(es_url)} at {es_url or 'a private node'}",
        f"- GPU: {gpu_note()}",
        "",
    ]


def supports_json_out(script: Path) -> bool:
    try:
        help_text = subprocess.run(
            [sys.executable, str(script), "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--json-out" in help_text


def run(command: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run one command; its output, exit code and wall time (never raises). stderr (progress)
    streams through while the command runs; its last lines are kept for the report."""
    import threading
    from collections import deque

    shown = " ".join(shlex.quote(part) for part in command).replace(sys.executable, "python")
    print(f"\n$ {shown}", flush=True)
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=40)
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            print(line, end="", file=sys.stderr, flush=True)

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        code = 124
        tail.append(f"timed out after {timeout:.0f}s")
    pumper.join(timeout=5)
    elapsed = time.monotonic() - started
    out = ANSI.sub("", out or "")
    print(out, flush=True)
    err = ANSI.sub("", "\n".join(tail))
    if code:
        print(f"exit code {code}\n" + "\n".join(err.splitlines()[-15:]), flush=True)
    return {"command": shown, "stdout": out, "stderr_tail": err, "code": code, "elapsed_s": elapsed}


def script_section(title: str, script: str, args: list[str], env, timeout, tmp: Path) -> list[str]:
    path = HERE / script
    if not path.is_file():
        return [f"## {title}", "", f"`benchmarks/{script}` does not exist yet: not measured.", ""]
    command = [sys.executable, f"benchmarks/{script}", *args]
    json_path = tmp / f"{path.stem}.json"
    if supports_json_out(path):
        command += ["--json-out", str(json_path)]
    result = run(command, env, timeout)
    lines = [f"## {title}", "", measured_on(), "", "```", f"$ {result['command']}", "```", ""]
    lines += [f"exit code {result['code']}, {result['elapsed_s']:.0f} s", ""]
    if json_path.is_file():
        lines += ["Figures (JSON written by the script):", "", "```json"]
        lines += [json_path.read_text().strip(), "```", ""]
    lines += ["Output:", "", "```", result["stdout"].rstrip() or "(no output)", "```", ""]
    if result["code"]:
        lines += ["stderr (last lines):", "", "```"]
        lines += [*result["stderr_tail"].strip().splitlines()[-15:], "```", ""]
    return lines


def find_sets(data_dir: Path, wanted: str) -> list[Path]:
    """`all`: every folder with a BEIR corpus, the tuning set first; else the named ones."""
    if wanted.strip() == "all":
        found = sorted(p for p in data_dir.iterdir() if (p / "corpus.jsonl").is_file())
        return sorted(found, key=lambda p: p.name != TUNING_SET)
    return [data_dir / name.strip() for name in wanted.split(",") if name.strip()]


def eval_one(
    dataset: Path, extra: list[str], env: dict[str, str], timeout: float, out_dir: Path
) -> dict[str, Any]:
    """`essearch eval` on one set through the CLI; its JSON report (or why there is none)."""
    if not dataset.is_dir():
        return {"dataset": dataset.name, "failed": f"{dataset} not found"}
    output = out_dir / f"eval-{dataset.name}.json"
    output.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "essearch",
        "eval",
        "--dataset",
        str(dataset),
        "--split",
        "test",
        "--modes",
        "bm25,knn,hybrid",
        "--fusion",
        HYBRID_FUSIONS,
        "--exact-knn",
        "--k",
        "10",
        "--output",
        str(output),
        *extra,
    ]
    result = run(command, env, timeout)
    shown = result["command"].replace(str(output), f"{dataset.name}.json")
    if not output.is_file():
        tail = "\n".join(result["stderr_tail"].strip().splitlines()[-15:])
        return {
            "dataset": dataset.name,
            "command": shown,
            "failed": f"exit code {result['code']}: {tail}",
        }
    data = json.loads(output.read_text())
    data["command"] = shown
    data["wall_s"] = result["elapsed_s"]
    return data


def _row(data: dict[str, Any], label: str) -> dict[str, Any] | None:
    return next((r for r in data.get("results", []) if r["label"] == label), None)


def _ndcg(data: dict[str, Any], label: str) -> float | None:
    row = _row(data, label)
    return None if row is None else float(row["metrics"]["ndcg@10"])


def all_sets_table(reports: list[dict[str, Any]]) -> list[str]:
    """One table: every set, every run, the three metrics and latency."""
    from essearch.eval.report import metric_title

    metrics: list[str] = next((d["metrics"] for d in reports if "metrics" in d), [])
    header = ["set", "run", "strategy", *map(metric_title, metrics), "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for data in reports:
        if "failed" in data:
            lines.append(f"| {data['dataset']} | not measured: {data['failed'][:120]} |")
            continue
        for row in data["results"]:
            label = row["label"]
            if row.get("fusion") == "auto":
                label = f"**{label} (default)**"
            cells = [data["dataset"], label, row.get("strategy") or "-"]
            cells += [f"{row['metrics'].get(name, 0.0):.4f}" for name in metrics]
            cells += [
                f"{row['latency'].get('p50_ms', 0):.1f}",
                f"{row['latency'].get('p95_ms', 0):.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def goals_table(reports: list[dict[str, Any]]) -> list[str]:
    """Per set: the default hybrid against max(BM25, kNN), and kNN against exact kNN."""
    lines = [
        "| set | default hybrid | max(BM25, kNN) | default >= max? | kNN | exact kNN (flat) "
        "| kNN - exact | within 0.01? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in reports:
        if "failed" in data:
            continue
        default, bm25, knn = (_ndcg(data, x) for x in ("hybrid/auto", "bm25", "knn"))
        exact = _ndcg(data, "knn/flat")
        cells = [data["dataset"]]
        if default is not None and bm25 is not None and knn is not None:
            best = max(bm25, knn)
            cells += [f"{default:.4f}", f"{best:.4f}", "yes" if default >= best else "**NO**"]
        else:
            cells += ["-", "-", "-"]
        if knn is not None and exact is not None:
            delta = knn - exact  # above exact kNN is fine too
            ok = delta >= -EXACT_KNN_TOLERANCE
            cells += [f"{knn:.4f}", f"{exact:.4f}", f"{delta:+.4f}", "yes" if ok else "**NO**"]
        else:
            cells += ["-", "-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    tuning = next((d for d in reports if d.get("dataset") == TUNING_SET and "results" in d), None)
    if tuning is not None and (value := _ndcg(tuning, "hybrid/auto")) is not None:
        verdict = "met" if value >= TUNING_GOAL else "**NOT met**"
        lines += ["", f"SciFact default hybrid nDCG@10 >= {TUNING_GOAL}: {value:.4f} ({verdict})."]
    return lines


def set_details(reports: list[dict[str, Any]]) -> list[str]:
    """How each set was run: queries, self-hits, indices, cache, phase times, notes."""
    from essearch.eval.report import latency_note, run_notes

    lines = []
    for data in reports:
        lines.append(f"- **{data['dataset']}**: `{data.get('command', '')}`")
        if "failed" in data:
            lines.append(f"  - not measured: {data['failed']}")
            continue
        index = data["index"]
        how = "reused" if index["reused"] else f"built in {index['build_s']:.0f} s"
        exact = data.get("exact_index") or {}
        exact_how = (
            ""
            if not exact
            else f"; flat twin `{exact['name']}` "
            + ("reused" if exact["reused"] else f"built in {exact['build_s']:.0f} s")
        )
        phases = ", ".join(f"{k.removesuffix('_s')} {v:.0f} s" for k, v in data["phases"].items())
        lines.append(
            f"  - {data['queries']:,} judged queries; {index['documents']:,} documents, "
            f"{index['chunks']:,} chunks in `{index['name']}` ({how}){exact_how}; "
            f"wall {data['wall_s']:.0f} s ({phases})"
        )
        lines.append(f"  - {latency_note(data)}")
        lines.extend(f"  - {note}" for note in run_notes(data))
    return lines


def eval_part(
    sets: list[Path], extra: list[str], env: dict[str, str], timeout: float, out_dir: Path
) -> list[str]:
    started = time.monotonic()
    reports = []
    for dataset in sets:
        reports.append(eval_one(dataset, extra, env, timeout, out_dir))
    wall = time.monotonic() - started
    first = next((d for d in reports if "embedder" in d), {})
    lines = [
        f"{HEADINGS['eval']}: all sets, one run",
        "",
        f"{measured_on()} Wall time of the whole "
        f"evaluation: **{wall:.0f} s** ({wall / 60:.1f} min) for {len(sets)} sets. Same settings "
        f"on every set (defaults tuned on {TUNING_SET} only): embedder "
        f"{first.get('embedder', {}).get('model', '?')}, analyzer `{first.get('analyzer', '?')}`, "
        "100 documents per query (each ranked by its best chunk), metrics from ranx. Rows in "
        "bold are the default (`auto`).",
        "",
        *all_sets_table(reports),
        "",
        "### Goals",
        "",
        *goals_table(reports),
        "",
        "### How each set ran",
        "",
        *set_details(reports),
        "",
    ]
    return lines


def merge_sections(old: str, fresh: dict[str, list[str]]) -> list[str]:
    """The parts run now replace their sections; the others keep what RESULTS.md had."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in old.splitlines():
        if line.startswith("## "):
            current = next((p for p, h in HEADINGS.items() if line.startswith(h)), None)
            if current is not None and current in sections:
                current = None  # a second section of a part (old layout): superseded
        if current is not None and current not in fresh:
            sections[current] = sections.get(current, "") + line + "\n"
    lines: list[str] = []
    for part in PARTS:
        if part in fresh:
            lines += fresh[part]
        elif part in sections:
            lines += [*sections[part].rstrip("\n").splitlines(), ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, type=Path, help="folder of the BEIR datasets")
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument(
        "--sets", default="all", help="BEIR sets to evaluate (comma-separated), or all"
    )
    parser.add_argument(
        "--cache", type=Path, help="embedding cache file (default: essearch eval's own)"
    )
    parser.add_argument("--index-prefix", help="evaluation index prefix (default: essearch's)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    parser.add_argument("--quick", action="store_true", help="smaller benchmark sizes")
    parser.add_argument(
        "--json-dir", type=Path, help="also keep each evaluation's full JSON report here"
    )
    args = parser.parse_args()

    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {PARTS}")
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a directory")
    env = dict(os.environ)
    if args.es_url:
        env["ESSEARCH_ES_URL"] = args.es_url
    env["PYTHONWARNINGS"] = "ignore"
    data_dir = args.data.resolve()
    sets = find_sets(data_dir, args.sets)
    missing = [s.name for s in sets if not s.is_dir()]
    if missing:
        parser.error(f"--sets: not found under {data_dir}: {', '.join(missing)}")
    started = time.monotonic()

    header = [
        "# essearch benchmark results",
        "",
        "Written by `benchmarks/run_all.py`; reproduce with:",
        "",
        "```",
        "python benchmarks/run_all.py --data ../shared/data --sets all"
        + (f" --es-url {args.es_url}" if args.es_url else ""),
        "```",
        "",
        *machine_section(args.es_url),
    ]
    es_args = ["--es-url", args.es_url] if args.es_url else []
    fresh: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="essearch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        eval_dir = args.json_dir or tmp
        eval_dir.mkdir(parents=True, exist_ok=True)
        if "embedders" in parts:
            sizes = ["--short-count", "256", "--long-count", "48"] if args.quick else []
            scifact = data_dir / "scifact"
            # SciFact passages for texts/s and (the tuning set only) ONNX-vs-torch quality
            scifact_args = ["--scifact", str(scifact / "corpus.jsonl"), "--beir", str(scifact)]
            # the dynamic int8 variant is measured too: the record of why it is not the default
            scifact_args.append("--dynamic-int8")
            fresh["embedders"] = script_section(
                "Embedders (local MiniLM, CPU)",
                "bench_embedders.py",
                [*sizes, *scifact_args, *es_args],
                env,
                args.timeout,
                tmp,
            )
        if "ingest" in parts:
            sizes = ["--docs", "5000", "--e2e-docs", "300", "--rss-sizes", "10000"]
            fresh["ingest"] = script_section(
                "Ingest",
                "bench_ingest.py",
                [
                    *es_args,
                    "--scifact",
                    str(data_dir / "scifact" / "corpus.jsonl"),
                    *(sizes if args.quick else []),
                ],
                env,
                args.timeout,
                tmp,
            )
        if "search" in parts:
            sizes = ["--queries", "100", "--docs", "2000"] if args.quick else []
            fresh["search"] = script_section(
                "Search latency", "bench_search.py", [*es_args, *sizes], env, args.timeout, tmp
            )
        if "eval" in parts:
            extra = []
            if args.cache:
                extra += ["--cache", str(args.cache)]
            if args.index_prefix:
                extra += ["--index-prefix", args.index_prefix]
            fresh["eval"] = eval_part(sets, extra, env, args.timeout, eval_dir)
    old = args.output.read_text() if args.output.is_file() else ""
    total = time.monotonic() - started
    lines = [
        *header,
        *merge_sections(old, fresh),
        f"This run of `run_all.py` took {total:.0f} s.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print(f"\nwrote {args.output} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
