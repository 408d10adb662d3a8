"""Word tokens for CJK text, made on the client, so BM25 on Chinese needs no analyzer plugin.

Elasticsearch's `standard` analyzer cuts Chinese into single characters; the `cjk`, `smartcn`,
`ik` and `icu` analyzers need analysis-common or a plugin, which many clusters (and the test
node) lack. The `whitespace` analyzer is built into the server, so essearch writes a second,
pre-tokenised copy of each chunk that holds CJK text (`schema.CJK_FIELD`) and searches it next
to `text` with the same tokens made from the query:

- simplified and traditional forms are folded to simplified character by character (OpenCC's
  `TSCharacters` table, plus NFKC for full-width letters), identically in documents and queries,
  so a query in either script finds a document in either; a per-character fold does not depend
  on context, which phrase-level conversion does, and is ~50x faster;
- Chinese runs are segmented into words by jieba (rjieba, its Rust port, when installed: same
  dictionary and output, ~30x faster); documents get the fine-grained search segmentation
  (a long word plus the words inside it, like ik_max_word), queries the precise one (ik_smart);
- Japanese (text with kana) and Korean, which jieba does not cover, become overlapping bigrams;
- other words (Latin, digits) are kept, lower-cased, so mixed Chinese-English text matches both.

The field only exists on chunks with CJK text; English chunks and queries are untouched.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from essearch.text.languages import HAN, HANGUL, KANA, KANA_SHARE_FOR_JAPANESE

log = logging.getLogger(__name__)

#: Server-built-in analyzer of the CJK field: the client already made the tokens.
CJK_FIELD_ANALYZER = "whitespace"
_HAN_KANA = HAN.pattern[1:-1] + KANA.pattern[1:-1]
_HANGUL = HANGUL.pattern[1:-1]
ANY_CJK = re.compile(f"[{_HAN_KANA}{_HANGUL}]")
RUNS = re.compile(
    f"(?P<han>[{_HAN_KANA}]+)|(?P<hangul>[{_HANGUL}]+)|(?P<other>[^\\W_{_HAN_KANA}{_HANGUL}]+)"
)
WORD = re.compile(r"[^\W_]")


def has_cjk(text: str | None) -> bool:
    if not text or text.isascii():  # no scan for plain ASCII text
        return False
    return ANY_CJK.search(text) is not None


# -- folding ---------------------------------------------------------------------------------------
@cache
def _t2s_table() -> dict[int, str]:
    """Traditional -> simplified, one character each, from OpenCC's own dictionary."""
    try:
        import opencc  # type: ignore[import-untyped]
    except ImportError:
        log.warning(
            "opencc-python-reimplemented is not installed: traditional and simplified Chinese "
            "are not folded together (pip install opencc-python-reimplemented)"
        )
        return {}
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    table: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        source, _, targets = line.partition("\t")
        target = targets.split(" ", 1)[0]
        if len(source) == 1 and target and target != source:
            table[ord(source)] = target
    return table


@cache
def _traditional() -> frozenset[str]:
    """The characters the table changes: most text has none, and a set test beats `translate`."""
    return frozenset(chr(code) for code in _t2s_table())


def fold(text: str) -> str:
    """One script for matching: NFKC (full-width forms), then traditional -> simplified."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    if _traditional().isdisjoint(text):
        return text
    return text.translate(_t2s_table())


# -- segmentation ----------------------------------------------------------------------------------
@cache
def _segmenters() -> tuple[str, Callable[[str], list[str]], Callable[[str], list[str]]]:
    """(name, cut for documents, cut for queries): rjieba, else jieba, else bigrams."""
    try:
        import rjieba

        return "rjieba", rjieba.cut_for_search, rjieba.cut
    except ImportError:
        pass
    try:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        return "jieba", jieba.lcut_for_search, jieba.lcut
    except ImportError:
        log.warning(
            "neither rjieba nor jieba is installed: Chinese is indexed as bigrams "
            "(pip install rjieba)"
        )
        return "bigram", bigrams, bigrams


def segmenter_name() -> str:
    """Which segmenter cuts Chinese here (recorded on the index, shown by `status`)."""
    return _segmenters()[0]


def bigrams(run: str) -> list[str]:
    """Overlapping character pairs; a single character stays as it is."""
    if len(run) < 2:
        return [run] if run else []
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _is_japanese(text: str) -> bool:
    kana = len(KANA.findall(text))
    return kana > 0 and kana >= KANA_SHARE_FOR_JAPANESE * len(ANY_CJK.findall(text))


def tokens(text: str, *, for_query: bool = False) -> Iterator[str]:
    """The folded, lower-cased word tokens of `text` (see the module docstring)."""
    folded = fold(text)
    _name, cut_document, cut_query = _segmenters()
    cut = cut_query if for_query else cut_document
    japanese = _is_japanese(folded)
    if not japanese and not HANGUL.search(folded):
        # Chinese (with any Latin words): one segmenter call; it keeps Latin words whole
        for token in cut(folded):
            if WORD.search(token):
                yield token.strip().lower()
        return
    for match in RUNS.finditer(folded):
        run = match.group()
        if match.lastgroup == "other":
            yield run.lower()
        elif match.lastgroup == "hangul" or japanese:
            yield from bigrams(run)
        else:
            for token in cut(run):
                if WORD.search(token):
                    yield token.strip().lower()


def words(text: str | None, *, for_query: bool = False) -> str | None:
    """The value of the CJK field (or the query for it): tokens joined by spaces; None when
    `text` has no CJK character, so English documents and queries stay as they were."""
    if not text or not has_cjk(text):
        return None
    return " ".join(tokens(text, for_query=for_query)) or None
