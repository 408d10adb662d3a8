"""Prompt presets for known model families: some models expect a prefix on queries (and documents).

Looked up by model name; settings.query_prompt / settings.document_prompt override a preset (an
empty string there means "no prompt").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："
NOMIC_QUERY, NOMIC_DOCUMENT = "search_query: ", "search_document: "
QWEN3_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
)
E5_INSTRUCT_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)


@dataclass(frozen=True)
class PromptPreset:
    """Prompts one model family expects; `None` means no prompt."""

    name: str
    query: str | None = None
    document: str | None = None


# First match wins: more specific patterns come first.
PRESETS: list[tuple[re.Pattern[str], PromptPreset]] = [
    (re.compile(r"e5-.*instruct", re.I), PromptPreset("e5-instruct", E5_INSTRUCT_QUERY)),
    (re.compile(r"(^|[/_-])e5([-_]|$)", re.I), PromptPreset("e5", "query: ", "passage: ")),
    (re.compile(r"bge-m3", re.I), PromptPreset("bge-m3")),
    (re.compile(r"bge-.*zh", re.I), PromptPreset("bge-zh", BGE_ZH_QUERY)),
    (re.compile(r"bge-", re.I), PromptPreset("bge", BGE_EN_QUERY)),
    (re.compile(r"qwen3-embedding", re.I), PromptPreset("qwen3-embedding", QWEN3_QUERY)),
    (re.compile(r"nomic-embed", re.I), PromptPreset("nomic", NOMIC_QUERY, NOMIC_DOCUMENT)),
    (re.compile(r"minilm", re.I), PromptPreset("minilm")),
]


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
