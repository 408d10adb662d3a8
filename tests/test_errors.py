"""The one Elasticsearch-error formatter, and how search errors leave the core."""

from __future__ import annotations

from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, NotFoundError

from essearch.errors import SearchError, es_error_reason
from essearch.retrieval import _core
from essearch.retrieval.params import ModeOptions, SearchOptions, SearchParams


def _api_error(status: int, body: object) -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "localhost", 9200),
    )
    cls = NotFoundError if status == 404 else ApiError
    return cls(message="error", meta=meta, body=body)


def test_error_object_with_cause() -> None:
    error = {"type": "x", "reason": "y", "caused_by": {"type": "z", "reason": "w"}}
    assert es_error_reason(error) == "x: y (caused by z: w)"


def test_search_failure_names_the_root_cause_not_all_shards_failed() -> None:
    body = {
        "error": {
            "root_cause": [{"type": "query_shard_exception", "reason": "failed to create query"}],
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "caused_by": {"type": "illegal_argument_exception", "reason": "field [x] is text"},
        },
        "status": 400,
    }
    assert es_error_reason(_api_error(400, body)) == (
        "query_shard_exception: failed to create query "
        "(caused by illegal_argument_exception: field [x] is text)"
    )


def test_plain_text_bodies_and_other_values() -> None:
    assert es_error_reason(_api_error(502, "Bad Gateway")) == "Bad Gateway"
    assert es_error_reason({"reason": "only a reason"}) == "only a reason"
    assert es_error_reason("already a line") == "already a line"


def test_search_errors_name_the_index_and_the_reason() -> None:
    refused = _api_error(400, {"error": {"type": "parsing_exception", "reason": "bad knn"}})
    error = _core.search_error("docs", refused, "highlighting")
    assert isinstance(error, SearchError)
    assert str(error) == "highlighting on 'docs' failed: HTTP 400 parsing_exception: bad knn"
    missing = _core.search_error("gone", _api_error(404, {"error": {"type": "index_not_found"}}))
    assert str(missing) == "index 'gone' not found"


def test_follow_up_requests_raise_search_errors_from_the_core() -> None:
    """The highlight follow-up (and the fallback re-send) go through the same error handling."""
    flow = _core._send_checked("docs", [{"query": {"match_all": {}}}], "highlighting")
    next(flow)
    refused = _api_error(400, {"error": {"type": "x", "reason": "no"}})
    try:
        flow.throw(refused)
    except SearchError as exc:
        assert str(exc) == "highlighting on 'docs' failed: HTTP 400 x: no"
    else:
        raise AssertionError("the ApiError escaped the core")


def test_search_options_list_every_search_params_field() -> None:
    fields = set(SearchParams.model_fields) - {"query", "filter"}
    assert set(SearchOptions.__annotations__) | set(ModeOptions.__annotations__) == fields
    assert set(ModeOptions.__annotations__) == fields - {"mode"}
