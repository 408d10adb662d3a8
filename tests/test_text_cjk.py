"""CJK word tokens, script folding, language detection, presets and the language guard (no I/O)."""

from __future__ import annotations

import pytest

from essearch.embedders.prompts import preset_for, resolve_prompts
from essearch.index.chunking import default_config
from essearch.index.schema import CJK_FIELD, LANGUAGE_FIELD
from essearch.retrieval._core import downweight_knn
from essearch.retrieval.params import SearchParams
from essearch.text import cjk, languages
from essearch.text.fields import language_fields
from essearch.text.guard import KNN_WEIGHT_FACTOR, coverage_warning, covers, query_flagged
from essearch.text.languages import LanguageTally, detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("北京是中华人民共和国的首都", "zh"),
        ("臺灣的高速鐵路連接臺北與高雄", "zh"),
        ("用 Python 写一个 web 服务器", "zh"),
        ("東京スカイツリーは東京都墨田区にある電波塔です", "ja"),
        ("서울은 대한민국의 수도이다", "ko"),
        ("The quick brown fox jumps over the lazy dog", "en"),
        ("Москва — столица России", "ru"),
        ("12345 !!!", "none"),
    ],
)
def test_language_from_scripts(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_a_quoted_chinese_name_in_english_text_is_still_english() -> None:
    assert detect_language("The paper by 王小明 compares BM25 with dense retrieval models") == "en"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "42 + 7 = 49",
        "Refunds take 5 days.",
        "tab\tand\nnewline, ~!@#$%^&*()_+`[]{}|;:'\",.<>/?",
        "x" * 5000,
    ],
)
def test_ascii_fast_path_weighs_like_the_script_scan(text: str) -> None:
    """ASCII text skips the regex scans; its weights must be what the scans give."""
    latin = len(languages.LATIN.findall(text)) / languages.LATIN_CHARS_PER_WORD
    assert languages.script_weights(text) == ({"en": latin} if latin else {})
    with_accent = languages.script_weights(text + "é")  # not ASCII: the scans
    assert with_accent == {"en": pytest.approx(latin + 1 / languages.LATIN_CHARS_PER_WORD)}
    assert cjk.has_cjk(text) is False and cjk.has_cjk(text + "中") is True


def test_tally_shares_weigh_amount_of_text() -> None:
    tally = LanguageTally()
    for _ in range(3):
        tally.add("北京是中华人民共和国的首都，也是全国的政治中心")
    tally.add("A short English line")
    shares = tally.shares()
    assert next(iter(shares)) == "zh" and shares["zh"] > 0.9 and 0 < shares["en"] < 0.1


def test_fold_makes_traditional_and_simplified_one_script() -> None:
    assert cjk.fold("臺灣關係發展") == cjk.fold("台湾关系发展") == "台湾关系发展"
    assert cjk.fold("ＡＢＣ１２３") == "ABC123"  # full-width forms


def test_chinese_is_cut_into_words_not_characters() -> None:
    tokens = cjk.words("战国无双3是由光荣和ω-force开发的", for_query=True)
    assert tokens is not None
    assert "战国" in tokens.split() and "开发" in tokens.split() and "force" in tokens.split()


def test_documents_get_fine_grained_words_queries_precise_ones() -> None:
    document = cjk.words("中华人民共和国").split()  # type: ignore[union-attr]
    query = cjk.words("中华人民共和国", for_query=True).split()  # type: ignore[union-attr]
    assert query == ["中华人民共和国"]
    assert "中华人民共和国" in document and "共和国" in document and "人民" in document


def test_either_script_gives_the_same_tokens() -> None:
    assert cjk.words("臺灣的高速鐵路", for_query=True) == cjk.words(
        "台湾的高速铁路", for_query=True
    )


def test_mixed_chinese_english_keeps_both_lower_cased() -> None:
    tokens = cjk.words("使用 Elasticsearch 构建混合检索，结合 BM25 与向量搜索", for_query=True)
    assert tokens is not None
    parts = tokens.split()
    assert {"elasticsearch", "bm25", "混合", "检索"} <= set(parts)
    assert "，" not in parts  # punctuation is not a token


def test_japanese_and_korean_fall_back_to_bigrams() -> None:
    assert cjk.words("スカイツリー") == "スカ カイ イツ ツリ リー"
    assert cjk.words("서울은") == "서울 울은"
    assert cjk.bigrams("字") == ["字"]


def test_text_without_cjk_has_no_field() -> None:
    assert cjk.words("Plain English text") is None
    fields = language_fields("Title", "Plain English text")
    assert fields == {LANGUAGE_FIELD: "en"}
    zh = language_fields("太阳能", "效率")
    assert zh[LANGUAGE_FIELD] == "zh" and zh[CJK_FIELD] == "太阳 太阳能 效率"


def test_segmenter_is_rjieba_here() -> None:
    """rjieba (the fast Rust segmenter) is what runs here; its speed lives in bench_cjk.py."""
    assert cjk.segmenter_name() == "rjieba"
    words = cjk.words("北京是中华人民共和国的首都")
    assert "北京" in words and "首都" in words


# -- the BM25 clause -------------------------------------------------------------------------------
def test_chinese_query_also_searches_the_word_field() -> None:
    clause = SearchParams.make("哪一本書規範了梵語的語法？", mode="bm25").text_clause()
    assert clause is not None
    should = clause["bool"]["should"]
    assert should[0]["combined_fields"]["query"] == "哪一本書規範了梵語的語法？"
    assert should[1] == {
        "match": {CJK_FIELD: {"query": "哪一 本书 规范 了 梵语 的 语法", "operator": "or"}}
    }


def test_english_query_body_is_unchanged() -> None:
    clause = SearchParams.make("solar panels", mode="bm25").text_clause()
    assert clause == {
        "combined_fields": {"query": "solar panels", "fields": ["title", "text"], "operator": "or"}
    }


def test_operator_and_boost_reach_the_word_clause() -> None:
    params = SearchParams.make("太阳能 电池", mode="bm25", operator="and", minimum_should_match=1)
    clause = params.text_clause(boost=0.5)
    assert clause is not None and clause["bool"]["boost"] == 0.5
    match = clause["bool"]["should"][1]["match"][CJK_FIELD]
    assert match["operator"] == "and" and match["minimum_should_match"] == 1


def test_lucene_syntax_and_other_fields_skip_the_word_field() -> None:
    assert (
        "query_string" in SearchParams.make("太阳能", mode="bm25", lucene_syntax=True).text_clause()
    )  # type: ignore[operator]
    only_title = SearchParams.make("太阳能", mode="bm25", fields=("title",)).text_clause()
    assert only_title is not None and "combined_fields" in only_title


# -- presets and the guard -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "name", "languages", "dims", "query_prompt"),
    [
        (
            "BAAI/bge-small-zh-v1.5",
            "bge-zh",
            ("zh",),
            512,
            "为这个句子生成表示以用于检索相关文章：",
        ),
        ("BAAI/bge-m3", "bge-m3", ("multilingual",), 1024, None),
        ("bge-m3:latest", "bge-m3", ("multilingual",), 1024, None),
        ("intfloat/multilingual-e5-small", "multilingual-e5", ("multilingual",), 384, "query: "),
        ("intfloat/multilingual-e5-base", "multilingual-e5", ("multilingual",), 768, "query: "),
        ("Qwen/Qwen3-Embedding-0.6B", "qwen3-embedding", ("multilingual",), 1024, "Instruct: "),
        ("qwen3-embedding:0.6b", "qwen3-embedding", ("multilingual",), 1024, "Instruct: "),
        ("sentence-transformers/all-MiniLM-L6-v2", "minilm", ("en",), 384, None),
        ("intfloat/e5-small-v2", "e5", ("en",), None, "query: "),
    ],
)
def test_presets(model, name, languages, dims, query_prompt) -> None:
    preset = preset_for(model)
    assert (preset.name, preset.languages, preset.dims) == (name, languages, dims)
    query, _document = resolve_prompts(model)
    assert (query or None) == query_prompt or (query or "").startswith(query_prompt or "\0")


def test_preset_chunk_sizes_fit_the_window() -> None:
    assert default_config("openai", "BAAI/bge-small-zh-v1.5").size == 450  # 512-token window
    assert default_config("ollama", "bge-m3").size == 1500
    assert default_config("openai", "unknown-model").size == 1500
    assert default_config("local", None).size == 200  # MiniLM unchanged


def test_coverage() -> None:
    assert not covers("all-MiniLM-L6-v2", "zh") and covers("all-MiniLM-L6-v2", "en")
    assert covers("BAAI/bge-m3", "zh") and covers("BAAI/bge-small-zh-v1.5", "zh")
    assert covers("some/unknown-model", "zh")  # unknown models are never flagged
    assert query_flagged("all-MiniLM-L6-v2", "台湾高铁") == "zh"
    assert query_flagged("all-MiniLM-L6-v2", "solar panels") is None
    assert query_flagged("BAAI/bge-m3", "台湾高铁") is None


def test_warning_only_when_most_text_is_uncovered() -> None:
    warning = coverage_warning("all-MiniLM-L6-v2", {"zh": 0.8, "en": 0.2})
    assert warning is not None
    assert "80%" in warning and "Chinese" in warning and "BAAI/bge-small-zh-v1.5" in warning
    assert "essearch reindex" in warning
    assert coverage_warning("all-MiniLM-L6-v2", {"en": 0.7, "zh": 0.3}) is None
    assert coverage_warning("BAAI/bge-m3", {"zh": 1.0}) is None


def test_guard_lowers_the_knn_weight_of_both_fusions() -> None:
    params = SearchParams.make("台湾高铁", knn_weight=0.6)
    lowered = downweight_knn(params)
    assert lowered.knn_weight == pytest.approx(0.6 * KNN_WEIGHT_FACTOR)
    assert lowered.rrf_weights == (1.0, KNN_WEIGHT_FACTOR)
    custom = downweight_knn(SearchParams.make("台湾", knn_weight=0.8, rrf_weights=(2.0, 1.0)))
    assert custom.knn_weight == pytest.approx(0.8 * KNN_WEIGHT_FACTOR)
    assert custom.rrf_weights == (2.0, KNN_WEIGHT_FACTOR)
