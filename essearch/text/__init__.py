"""Text handling that depends on the language: script detection and CJK word tokens for BM25."""

from essearch.text.cjk import CJK_FIELD_ANALYZER, fold, has_cjk, words
from essearch.text.languages import LanguageTally, detect_language

__all__ = [
    "CJK_FIELD_ANALYZER",
    "LanguageTally",
    "detect_language",
    "fold",
    "has_cjk",
    "words",
]
