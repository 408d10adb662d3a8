"""The public surface: top-level names resolve, and the CLI starts without loading torch."""

from __future__ import annotations

import subprocess
import sys

import essearch


def test_public_names_resolve():
    for name in essearch.__all__:
        assert getattr(essearch, name) is not None, name


def test_cli_import_does_not_load_heavy_stacks():
    code = (
        "import sys, essearch.cli; "
        "print(','.join(m for m in ('torch', 'sentence_transformers', 'openai', 'ollama') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
