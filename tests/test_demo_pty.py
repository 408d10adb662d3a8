"""`essearch demo` as a user sees it: a real subprocess on a pseudo-terminal, so rich draws its
live spinner and progress bar, against the test node (ESSEARCH_ES_URL)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_pty(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `args` with stdout and stderr on a pseudo-terminal; (exit code, everything drawn)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        args, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the follower side closed: the process is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        os.close(leader)
    return proc.returncode, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def test_demo_shows_progress_from_the_first_second(es_url, index_name, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ESSEARCH_")},
        "ESSEARCH_ES_URL": es_url,
        "ESSEARCH_INDEX_NAME": index_name,
        "ESSEARCH_INDEX_REPLICAS": "0",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
        "TERM": "xterm",
        "OMP_NUM_THREADS": "1",
    }
    code, screen = run_on_pty(
        [sys.executable, "-m", "essearch", "demo", "--query", "refund to the card"],
        env,
        timeout=600,
    )
    assert code == 0, screen[-3000:]
    # the phases, each named, with its time
    assert "finding Elasticsearch" in screen or "Elasticsearch from env" in screen
    assert re.search(r"✓ Elasticsearch from env at \S+ \(\d+\.\ds\)", screen), screen[:2000]
    assert re.search(r"✓ loading all-MiniLM-L6-v2 \(\d+\.\ds\)", screen)
    # a short cluster summary instead of the settings table (which stays in doctor)
    assert "hybrid search will use" in screen and "licence" in screen
    assert "Effective settings" not in screen
    # the bar moved: vectors were counted while embedding went on, with a running clock
    embedded = {int(n.replace(",", "")) for n in re.findall(r"embedded ([\d,]+)", screen)}
    final = max(embedded)
    assert final >= 240 and any(0 < n < final for n in embedded), sorted(embedded)
    assert re.search(r"chunks .*0:00:0[1-9]|0:00:[1-5]\d", screen)
    assert "Traceback" not in screen
