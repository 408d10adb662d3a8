"""The torch backend: any sentence-transformers model on this machine (`essearch[torch]`).

For models the ONNX default cannot run (non-BERT architectures such as XLM-R or Qwen3-Embedding,
hub names resolved through the Hugging Face cache) and for GPUs. It records the same embedding
space as the ONNX backend (provider `local`, same model name), so an index built with one can be
searched and extended with the other. torch is imported on first use, so the CLI starts fast.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

from essearch.embedders.local import (
    LocalModelEmbedder,
    local_model_options,
    resolve_local_model,
)
from essearch.errors import EmbeddingError
from essearch.settings import EmbedderSettings

log = logging.getLogger(__name__)


def sentence_transformers_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def _set_offline_flags() -> None:
    """No hub calls for local files (read at import time by huggingface_hub/transformers)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _quiet_transformers() -> None:
    """No "Loading weights" progress bars on the CLI's output."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - cosmetic only
        pass


# Loaded models shared by every SentenceTransformerEmbedder with the same path and device (prompts
# and normalisation are per instance), each with a lock: one forward pass at a time per model.
_LOADED: dict[tuple[str, str | None], tuple[Any, threading.Lock]] = {}
_LOADED_LOCK = threading.Lock()


class SentenceTransformerEmbedder(LocalModelEmbedder):
    """sentence-transformers model by name or path; `None` = the packaged all-MiniLM-L6-v2.
    Options: those of `LocalModelEmbedder` (any torch device). The provider stays `local`: the
    same embedding space as the ONNX runtime."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self._model: Any = None
        self._model_lock = threading.Lock()
        self._load_path = self._resolve_path(self.model)

    @staticmethod
    def _resolve_path(name: str) -> str:
        packaged = resolve_local_model(name)
        return str(packaged) if packaged is not None else name

    @property
    def sentence_transformer(self) -> Any:
        """The loaded model (loads it on first use)."""
        if self._model is None:
            key = (self._load_path, self.device)
            with _LOADED_LOCK:
                if key not in _LOADED:
                    _LOADED[key] = (self._load(), threading.Lock())
                self._model, self._model_lock = _LOADED[key]
        return self._model

    def _load(self) -> Any:
        local = Path(self._load_path).exists()
        if local:
            _set_offline_flags()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - installed with the package
            raise EmbeddingError(
                "the sentence-transformers backend needs torch: pip install 'essearch[torch]'"
            ) from exc
        _quiet_transformers()
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)  # process-wide; only when asked for
        try:
            model = SentenceTransformer(self._load_path, device=self.device)
        except Exception as exc:
            hint = "" if local else " (not a local path; is it on the Hugging Face hub and cached?)"
            raise EmbeddingError(f"cannot load local model {self.model!r}{hint}: {exc}") from exc
        log.info("loaded local model %s on %s", self.model, model.device)
        return model

    @property
    def dims(self) -> int:
        if self._dims is None:
            model = self.sentence_transformer
            get = getattr(model, "get_embedding_dimension", None)
            get = get or model.get_sentence_embedding_dimension
            self._dims = get() or len(self._embed(["dimension probe"])[0])
        return self._dims

    def _embed(self, texts: list[str]) -> list[list[float]]:
        model = self.sentence_transformer
        with self._model_lock:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        rows: list[list[float]] = vectors.tolist()
        return rows

    def close(self) -> None:
        self._model = None

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, **_: Any) -> SentenceTransformerEmbedder:
        return cls(settings.model, **local_model_options(settings))
