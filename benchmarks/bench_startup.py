"""Start-up time of `essearch` commands that need no model, against a same-run baseline.

Each command runs N times in a fresh interpreter; the script prints the minimum and median wall
time, the CPU time (user + sys, less sensitive to a busy machine) and which heavy packages the
command imported. The baseline is a bare `python -c pass`, and optionally another checkout
(`--baseline-tree /path/to/older/checkout`) measured in the same run.

    python benchmarks/bench_startup.py --runs 7 --baseline-tree /work/main
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [["--help"], ["search", "--help"], ["ingest", "--help"], ["mappings", "list"]]
HEAVY = (
    "elasticsearch",
    "numpy",
    "aiohttp",
    "torch",
    "sentence_transformers",
    "pyarrow",
    "openai",
    "httpx",
    "pydantic",
)
PROBE = (
    "import runpy, sys; sys.argv = ['essearch', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('essearch', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
    "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
)


def run_once(tree: Path | None, args: list[str]) -> tuple[float, float, str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    code = "pass" if tree is None else PROBE
    # From a neutral directory: `python -c` puts the working directory first on sys.path.
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = proc.stderr.splitlines()
    heavy = next((line[6:] for line in lines if line.startswith("HEAVY=")), "")
    return wall, cpu, heavy


def measure(label: str, tree: Path | None, args: list[str], runs: int) -> None:
    samples = [run_once(tree, args) for _ in range(runs)]
    walls = [s[0] for s in samples]
    cpus = [s[1] for s in samples]
    print(
        f"{label:<14} {' '.join(args) or '(python -c pass)':<16} "
        f"wall min {min(walls):.3f}s median {statistics.median(walls):.3f}s  "
        f"cpu min {min(cpus):.3f}s  heavy imports: {samples[-1][2] or '-'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="Time only commands starting with this word (e.g. status).")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--baseline-tree", type=Path, help="An older checkout to compare with.")
    parser.add_argument(
        "--es-url", help="Also time `status` (asks the cluster, needs no model) against it."
    )
    args = parser.parse_args()
    commands = list(COMMANDS)
    if args.es_url:
        os.environ["ESSEARCH_ES_URL"] = args.es_url
        os.environ["ESSEARCH_INDEX_NAME"] = "bench-startup-absent"  # older trees lack --index
        commands.append(["status", "--json"])
    if args.only:
        commands = [c for c in commands if c[0] == args.only]
    measure("python", None, [], args.runs)
    for command in commands:
        if args.baseline_tree:
            measure("baseline", args.baseline_tree, command, args.runs)
        measure("this tree", args.tree, command, args.runs)


if __name__ == "__main__":
    main()
