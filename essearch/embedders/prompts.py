"""Prompt presets for known model families: some models expect a prefix on queries (and documents).

Looked up by model name; settings.query_prompt / settings.document_prompt override a preset (an
empty string there means "no prompt").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："
NOMIC_QUERY, NOMIC_DOCUMENT = "search_query: ", "search_document: "
QWEN3_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
)
E5_INSTRUCT_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)


#: Languages of a model that was trained on ~100 languages (it covers whatever the text is in).
MULTILINGUAL = "multilingual"


@dataclass(frozen=True)
class PromptPreset:
    """What essearch knows about one model family: the prompts it expects (`None`: none), the
    languages it was trained for (the language guard reads them; empty: unknown), its output
    size, and chunk sizes that fit its input window (model tokens when the local model's
    tokenizer counts them, characters otherwise; a CJK character is about one token)."""

    name: str
    query: str | None = None
    document: str | None = None
    languages: tuple[str, ...] = ()
    dims: int | None = None
    chunk_tokens: tuple[int, int] | None = None  # (size, overlap)
    chunk_chars: tuple[int, int] | None = None

    def covers(self, language: str) -> bool | None:
        """Whether the model was trained for `language`; None when essearch does not know."""
        if not self.languages:
            return None
        return MULTILINGUAL in self.languages or language in self.languages


# Input windows: MiniLM 256 word pieces; bge-*-zh and multilingual-e5 512; bge-m3 8,192;
# Qwen3-Embedding 32,768. Chunks stay well inside them (the title is embedded with each chunk).
_WINDOW_512: dict[str, Any] = {"chunk_tokens": (400, 64), "chunk_chars": (450, 50)}
_LONG: dict[str, Any] = {"chunk_tokens": (512, 64), "chunk_chars": (1500, 150)}

# First match wins: more specific patterns come first.
PRESETS: list[tuple[re.Pattern[str], PromptPreset]] = [
    (
        re.compile(r"multilingual-e5-.*instruct", re.I),
        PromptPreset("multilingual-e5-instruct", E5_INSTRUCT_QUERY, languages=(MULTILINGUAL,)),
    ),
    (re.compile(r"e5-.*instruct", re.I), PromptPreset("e5-instruct", E5_INSTRUCT_QUERY)),
    (
        re.compile(r"multilingual-e5-small", re.I),
        PromptPreset(
            "multilingual-e5", "query: ", "passage: ", (MULTILINGUAL,), 384, **_WINDOW_512
        ),
    ),
    (
        re.compile(r"multilingual-e5-base", re.I),
        PromptPreset(
            "multilingual-e5", "query: ", "passage: ", (MULTILINGUAL,), 768, **_WINDOW_512
        ),
    ),
    (
        re.compile(r"multilingual-e5", re.I),
        PromptPreset("multilingual-e5", "query: ", "passage: ", (MULTILINGUAL,), **_WINDOW_512),
    ),
    (
        re.compile(r"(^|[/_-])e5([-_]|$)", re.I),
        PromptPreset("e5", "query: ", "passage: ", ("en",), **_WINDOW_512),
    ),
    (
        re.compile(r"bge-m3", re.I),
        PromptPreset("bge-m3", None, None, (MULTILINGUAL,), 1024, **_LONG),
    ),
    (
        re.compile(r"bge-small-zh", re.I),
        PromptPreset("bge-zh", BGE_ZH_QUERY, None, ("zh",), 512, **_WINDOW_512),
    ),
    (
        re.compile(r"bge-base-zh", re.I),
        PromptPreset("bge-zh", BGE_ZH_QUERY, None, ("zh",), 768, **_WINDOW_512),
    ),
    (
        re.compile(r"bge-large-zh", re.I),
        PromptPreset("bge-zh", BGE_ZH_QUERY, None, ("zh",), 1024, **_WINDOW_512),
    ),
    (re.compile(r"bge-.*zh", re.I), PromptPreset("bge-zh", BGE_ZH_QUERY, None, ("zh",))),
    (re.compile(r"bge-", re.I), PromptPreset("bge", BGE_EN_QUERY, None, ("en",))),
    (
        re.compile(r"qwen3-embedding[-:_]?0\.6b", re.I),
        PromptPreset("qwen3-embedding", QWEN3_QUERY, None, (MULTILINGUAL,), 1024, **_LONG),
    ),
    (
        re.compile(r"qwen3-embedding", re.I),
        PromptPreset("qwen3-embedding", QWEN3_QUERY, None, (MULTILINGUAL,), **_LONG),
    ),
    (
        re.compile(r"nomic-embed", re.I),
        PromptPreset("nomic", NOMIC_QUERY, NOMIC_DOCUMENT, ("en",)),
    ),
    (
        re.compile(r"text-embedding-3|text-embedding-ada", re.I),
        PromptPreset("openai", None, None, (MULTILINGUAL,)),
    ),
    (
        re.compile(r"paraphrase-multilingual|LaBSE", re.I),
        PromptPreset("multilingual", None, None, (MULTILINGUAL,)),
    ),
    (re.compile(r"minilm", re.I), PromptPreset("minilm", None, None, ("en",), 384)),
]

#: What the language guard suggests for text a model does not cover (all have a preset above).
SUGGESTED_MODELS: dict[str, tuple[str, ...]] = {
    "zh": ("BAAI/bge-small-zh-v1.5", "BAAI/bge-m3", "Qwen/Qwen3-Embedding-0.6B"),
    "other": ("BAAI/bge-m3", "intfloat/multilingual-e5-small", "Qwen/Qwen3-Embedding-0.6B"),
}


def suggestions_for(language: str) -> tuple[str, ...]:
    return SUGGESTED_MODELS.get(language, SUGGESTED_MODELS["other"])


def preset_for(model: str | None) -> PromptPreset:
    """The preset whose pattern matches `model`, or an empty one."""
    for pattern, preset in PRESETS:
        if model and pattern.search(model):
            return preset
    return PromptPreset("none")


def resolve_prompts(
    model: str | None, query_prompt: str | None = None, document_prompt: str | None = None
) -> tuple[str | None, str | None]:
    """(query prompt, document prompt): explicit values win over the model's preset; "" is none."""
    preset = preset_for(model)
    query = preset.query if query_prompt is None else query_prompt
    document = preset.document if document_prompt is None else document_prompt
    return (query or None, document or None)
