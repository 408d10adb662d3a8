"""Output sizes of well-known embedding models, keyed by model name.

`init` and `status` only need an embedder's identity (model and dims), and loading a local model
just to count its dimensions costs tens of seconds; for these models the size is known.
Any backend (sentence-transformers, ONNX) serving the same model produces the same size.
"""

from __future__ import annotations

KNOWN_DIMS: dict[str, int] = {
    "all-minilm-l6-v2": 384,
    "all-minilm-l12-v2": 384,
    "all-mpnet-base-v2": 768,
    "paraphrase-multilingual-minilm-l12-v2": 384,
    "multilingual-e5-small": 384,
    "multilingual-e5-base": 768,
    "multilingual-e5-large": 1024,
    "e5-small-v2": 384,
    "e5-base-v2": 768,
    "bge-small-en-v1.5": 384,
    "bge-base-en-v1.5": 768,
    "bge-large-en-v1.5": 1024,
    "bge-small-zh-v1.5": 512,
    "bge-base-zh-v1.5": 768,
    "bge-m3": 1024,
    "nomic-embed-text": 768,
}


def known_dims(model: str | None) -> int | None:
    """The output size of `model` (a hub id like `org/name`, a bare name or a directory
    named after the model), or None when it is not in the table."""
    if not model:
        return None
    name = model.rstrip("/").rsplit("/", 1)[-1].lower()
    return KNOWN_DIMS.get(name)
