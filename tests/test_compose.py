"""docker-compose.yml: valid, pinned to the same Elasticsearch as the test node."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from essearch.es.provision import ES_VERSION

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def _compose_cli_available() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    return subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


def test_compose_file_structure():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    es = services["elasticsearch"]
    assert es["image"].endswith(f"elasticsearch:{ES_VERSION}")
    assert es["environment"]["discovery.type"] == "single-node"
    assert "healthcheck" in es and "_cluster/health" in " ".join(es["healthcheck"]["test"])
    assert any(v.startswith("esdata:") for v in es["volumes"]) and "esdata" in spec["volumes"]
    assert services["kibana"]["profiles"] == ["kibana"]
    assert services["kibana"]["image"].endswith(f"kibana:{ES_VERSION}")
    assert services["ollama"]["profiles"] == ["ollama"]
    pull = services["ollama-pull"]
    assert pull["profiles"] == ["ollama"] and "pull" in pull["entrypoint"]
    assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"


def test_docker_compose_config_validates_when_available():
    """`docker compose config` is the authority when the compose plugin is installed."""
    if not _compose_cli_available():
        pytest.skip(
            "the docker compose plugin is not installed; the structural test covers the file"
        )
    proc = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(COMPOSE),
            "--profile",
            "kibana",
            "--profile",
            "ollama",
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
