"""Writes minilm_reference.npz: all-MiniLM-L6-v2 vectors made by sentence-transformers.

The ONNX tests compare against this file, so they run where torch is not installed (`.[local]`).
Regenerate (needs `pip install -e ".[torch]"`) only when the texts below change:

    python tests/data/make_minilm_reference.py
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).with_name("minilm_reference.npz")

EN = [
    "The cat sits on the mat.",
    "How do I reset my password?",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "Elasticsearch stores dense vectors and finds nearest neighbours with HNSW.",
    "Mitochondria are the powerhouse of the cell.",
    "refund policy",
    "What is the capital of France?",
    "BRCA1 mutations increase the risk of breast and ovarian cancer.",
]
ZH = [
    "退款怎么处理？",
    "向量检索与关键词检索结合可以提高召回率。",
    "今天北京的天气很好，适合出去散步。",
    "请问如何重置我的密码",
    "蛋白质折叠是生物学中的一个核心问题。",
    "混合检索",
]
ODD = [
    "a",
    "  x  ",
    "?",
    "...",
    "😀 emoji only 🎉",
    "ÀÉÎÕÜ accents çà et là",
    "MiXeD CaSe and    extra   spaces",
    "tabs\tand\nnewlines\r\nin text",
    "1234567890",
    "https://example.com/path?q=1&b=2",
    "[CLS] [SEP] [PAD] literal special tokens",
    "Ελληνικά και русский текст",
]
_WORDS = (
    "search vector index query document model embedding cluster protein cell gene therapy "
    "the of and to in is that for on with as by at from 蛋白质 检索 模型 数据"
)
WORDS = _WORDS.split(" ")


def texts() -> list[str]:
    """200 varied texts: English, Chinese, odd and near-empty ones, short to far past 256 tokens."""
    rng = random.Random(17)
    out = EN + ZH + ODD
    while len(out) < 200:
        length = rng.choice([1, 2, 5, 12, 40, 120, 300, 700])
        out.append(" ".join(rng.choice(WORDS) for _ in range(length)))
    return out


def main() -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from essearch.embedders.local import packaged_model_path

    model = SentenceTransformer(str(packaged_model_path()), device="cpu")
    vectors = model.encode(texts(), batch_size=32, normalize_embeddings=True)
    np.savez_compressed(OUT, texts=np.array(texts()), vectors=vectors.astype(np.float16))
    print(f"wrote {OUT} ({len(vectors)} vectors)")


if __name__ == "__main__":
    main()
