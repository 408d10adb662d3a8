"""Reproduce every published figure in one command and write benchmarks/RESULTS.md.

    python benchmarks/run_all.py --data ../shared/data --es-url http://127.0.0.1:19200

Runs, each as a subprocess whose exact command is recorded:
  1. benchmarks/bench_embedders.py  (embedder issue: texts/s by batch size, cache hits)
  2. benchmarks/bench_ingest.py     (ingest issue: essearch vs raw parallel_bulk, end to end, RSS)
  3. benchmarks/bench_search.py     (retrieval issue: essearch vs raw client latency)
  4. essearch eval on SciFact       (bm25, knn, hybrid with the default and client-side fusions)
  5. essearch eval on evaluation-only sets with the same defaults (--check, default
     nfcorpus_preprocessed), to see whether the defaults generalise

Convention for the benchmark scripts: each prints its figures (with ratios against a baseline
measured in the same run). When a script's --help lists `--json-out PATH`, it is passed and the JSON
figures are embedded in RESULTS.md; in any case its stdout is recorded verbatim.
The evaluation index of each dataset is reused across runs (same corpus file and embedder).
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
PARTS = ("embedders", "ingest", "search", "eval", "check")
HYBRID_FUSIONS = "auto,client-rrf,client-linear"


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


def machine_section(es_url: str | None) -> list[str]:
    return [
        "## Machine and versions",
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
    """Run one command; its output, exit code and wall time (never raises)."""
    shown = " ".join(shlex.quote(part) for part in command).replace(sys.executable, "python")
    print(f"\n$ {shown}", flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
        )
        out, code = proc.stdout, proc.returncode
        err = proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, code = f"timed out after {timeout:.0f}s", 124
    elapsed = time.monotonic() - started
    out = ANSI.sub("", out)
    print(out, flush=True)
    if code:
        tail = "\n".join(ANSI.sub("", err).strip().splitlines()[-15:])
        print(f"exit code {code}\n{tail}", flush=True)
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
    lines = [f"## {title}", "", "```", f"$ {result['command']}", "```", ""]
    lines += [f"exit code {result['code']}, {result['elapsed_s']:.0f} s", ""]
    if json_path.is_file():
        lines += ["Figures (JSON written by the script):", "", "```json"]
        lines += [json_path.read_text().strip(), "```", ""]
    lines += ["Output:", "", "```", result["stdout"].rstrip() or "(no output)", "```", ""]
    if result["code"]:
        lines += ["stderr (last lines):", "", "```"]
        lines += [*result["stderr_tail"].strip().splitlines()[-15:], "```", ""]
    return lines


def eval_section(
    title: str, dataset: Path, extra: list[str], env, timeout, tmp: Path, note: str = ""
) -> tuple[list[str], dict[str, Any] | None]:
    from essearch.eval.report import latency_note, markdown_table

    if not dataset.is_dir():
        return [f"## {title}", "", f"{dataset} not found: not measured.", ""], None
    output = tmp / f"eval-{dataset.name}.json"
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
        "--k",
        "10",
        "--output",
        str(output),
        "--quiet",
        *extra,
    ]
    result = run(command, env, timeout)
    shown = result["command"].replace(str(output), f"{dataset.name}.json")
    lines = [f"## {title}", "", "```", f"$ {shown}", "```", ""]
    if note:
        lines += [note, ""]
    if not output.is_file():
        lines += [f"failed (exit code {result['code']}):", "", "```"]
        lines += [*result["stderr_tail"].strip().splitlines()[-15:], "```", ""]
        return lines, None
    data = json.loads(output.read_text())
    index = data["index"]
    built = (
        "reused from an earlier run"
        if index["reused"]
        else f"built in {index['build_s']:.0f} s "
        f"({index['documents']} docs, {index['chunks']} chunks)"
    )
    lines += [
        f"{data['queries']} judged queries, embedder {data['embedder']['model']}, analyzer "
        f"`{data['analyzer']}`, index `{index['name']}` {built}; "
        f"{index['chunks_per_doc']:.2f} chunks per document, each document ranked by its best "
        f"chunk; {latency_note(data)}.",
        "",
        markdown_table(data),
        "",
    ]
    return lines, data


def targets_section(data: dict[str, Any]) -> list[str]:
    rows = {r["label"]: r["metrics"] for r in data["results"]}
    ndcg = "ndcg@10"
    bm25 = rows.get("bm25", {}).get(ndcg)
    knn = rows.get("knn", {}).get(ndcg)
    hybrid = rows.get("hybrid/auto", {}).get(ndcg)
    lines = ["### SciFact targets", ""]
    if knn is not None:
        verdict = "met" if knn >= 0.64 else "MISSED"
        lines.append(f"- kNN nDCG@10 >= 0.64: {knn:.4f} ({verdict})")
    if None not in (bm25, knn, hybrid):
        goal = max(bm25, knn) + 0.02
        verdict = "met" if hybrid >= goal else "MISSED"
        lines.append(
            f"- hybrid (default fusion `auto`) >= max(BM25, kNN) + 0.02 = {goal:.4f}: "
            f"{hybrid:.4f} ({verdict})"
        )
    if bm25 is not None:
        lines.append(
            f"- BM25 with the `{data['analyzer']}` analyzer: {bm25:.4f} (published BEIR figure "
            "0.665 used `english`, which the test node lacks)"
        )
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, type=Path, help="folder of the BEIR datasets")
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument(
        "--check", default="nfcorpus_preprocessed", help="evaluation-only sets (comma-separated)"
    )
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
    started = time.monotonic()

    lines = [
        "# essearch benchmark results",
        "",
        "Written by `benchmarks/run_all.py`; reproduce with:",
        "",
        "```",
        "python benchmarks/run_all.py --data ../shared/data"
        + (f" --es-url {args.es_url}" if args.es_url else ""),
        "```",
        "",
        *machine_section(args.es_url),
    ]
    es_args = ["--es-url", args.es_url] if args.es_url else []
    with tempfile.TemporaryDirectory(prefix="essearch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        eval_dir = args.json_dir or tmp
        eval_dir.mkdir(parents=True, exist_ok=True)
        if "embedders" in parts:
            sizes = ["--short-count", "256", "--long-count", "48"] if args.quick else []
            lines += script_section(
                "Embedders (local MiniLM, CPU)",
                "bench_embedders.py",
                sizes,
                env,
                args.timeout,
                tmp,
            )
        if "ingest" in parts:
            sizes = ["--docs", "5000", "--e2e-docs", "300", "--rss-sizes", "10000"]
            lines += script_section(
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
            lines += script_section(
                "Search latency", "bench_search.py", [*es_args, *sizes], env, args.timeout, tmp
            )
        if "eval" in parts:
            section, data = eval_section(
                "Retrieval quality on SciFact (development set)",
                data_dir / "scifact",
                [],
                env,
                args.timeout,
                eval_dir,
                note="Defaults are tuned on SciFact only.",
            )
            lines += section
            if data is not None:
                lines += targets_section(data)
        if "check" in parts:
            for name in [n.strip() for n in args.check.split(",") if n.strip()]:
                extra = ["--drop-self-hits"] if name == "arguana" else []
                section, _ = eval_section(
                    f"Generalisation check: {name} (evaluation only, same defaults)",
                    data_dir / name,
                    extra,
                    env,
                    args.timeout,
                    eval_dir,
                    note="Not used for tuning; same settings as SciFact.",
                )
                lines += section
    lines += [f"Total time: {time.monotonic() - started:.0f} s.", ""]
    args.output.write_text("\n".join(lines))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
