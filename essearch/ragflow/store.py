"""`ESDocStore`: RAGFlow's `DocStoreConnection` contract on Elasticsearch, via essearch.

Method names, argument order and return shapes follow RAGFlow's ES connector
(`rag/utils/es_conn.py`); see docs/ragflow.md. Where the cluster lacks painless,
`_update_by_query`/`_delete_by_query` or `rank_feature` (as `essearch.es.probe` reports), the same
contract is kept client-side (point-in-time scan + bulk, `function_score`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from essearch.errors import CapabilityError, SearchError, es_error_reason
from essearch.es import Capabilities, make_client, probe
from essearch.es.pit import pit_pages
from essearch.ragflow import responses
from essearch.ragflow.conditions import condition_query, with_dataset
from essearch.ragflow.mapping import MAX_VECTOR_DIMS, index_body, vector_dims, vector_field_mapping
from essearch.ragflow.request import KNN_CAP, Fusion, build_search
from essearch.ragflow.sql import rewrite_sql
from essearch.ragflow.updates import apply_update, needs_source, painless_script

log = logging.getLogger(__name__)

BULK_ROWS = 2000
SCAN_BATCH = 1000
PIT_KEEP_ALIVE = "2m"
CONFLICT_ROUNDS = 3


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def _plain(value: Any) -> Any:
    """numpy arrays/scalars -> JSON-ready Python values."""
    return value.tolist() if hasattr(value, "tolist") else value


class ESDocStore:
    """A RAGFlow document store (one index per tenant, `kb_id`-scoped on every call).

    `fusion`: how a `weighted_sum` FusionExpr's "t,v" weights score a hybrid search; "ragflow"
    (RAGFlow's ES scores: (1-v)*text + knn) or "weighted" (t*text + v*knn), see `request.py`.
    Errors of the last `insert`/`update`/`delete` are kept in `last_errors` ("id:reason").
    """

    def __init__(
        self,
        client: Elasticsearch | None = None,
        *,
        settings: Any = None,
        index_prefix: str = "ragflow_",
        capabilities: Capabilities | None = None,
        shards: int = 1,
        replicas: int = 0,
        refresh_interval: str = "1000ms",
        vector_index_options: dict[str, Any] | None = None,
        fusion: Fusion = "ragflow",
        max_result_window: int = 10_000,
    ) -> None:
        self.client = client if client is not None else make_client(settings)
        self.index_prefix = index_prefix
        self._caps = capabilities
        self.shards = shards
        self.replicas = replicas
        self.refresh_interval = refresh_interval
        self.vector_index_options = vector_index_options
        self.fusion: Fusion = fusion
        self.max_result_window = max_result_window
        self.last_errors: list[str] = []
        self._vectors: dict[str, dict[str, int]] = {}

    # -- identity and capabilities ---------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        if self._caps is None:
            self._caps = probe(self.client)
        return self._caps

    @property
    def _source_vectors_option(self) -> bool:
        return self.capabilities.version_tuple >= (9, 1, 0)

    def index_name(self, tenant_id: str) -> str:
        """The tenant's chunk index (`ragflow_<tenant>` by default)."""
        return f"{self.index_prefix}{tenant_id}".lower()

    def doc_meta_index_name(self, tenant_id: str) -> str:
        return f"{self.index_prefix}doc_meta_{tenant_id}".lower()

    def db_type(self) -> str:
        return "elasticsearch"

    def health(self) -> dict[str, Any]:
        info = dict(self.client.cluster.health().body)
        info["type"] = "elasticsearch"
        return info

    # -- indices ---------------------------------------------------------------------------------
    def create_idx(
        self,
        index_name: str,
        dataset_id: str | None = None,
        vector_size: int | None = None,
        parser_id: str | None = None,
    ) -> bool:
        """Create the tenant index if missing; `q_<vector_size>_vec` is mapped up front."""
        if vector_size is not None and not 0 < int(vector_size) <= MAX_VECTOR_DIMS:
            raise SearchError(f"create_idx {index_name!r}: vector_size {vector_size} out of range")
        if self.client.indices.exists(index=index_name):
            if vector_size:
                self._ensure_vector_fields(
                    index_name, {f"q_{int(vector_size)}_vec": int(vector_size)}
                )
            return True
        caps = self.capabilities
        body = index_body(
            shards=self.shards,
            replicas=self.replicas,
            refresh_interval=self.refresh_interval,
            rank_feature=caps.rank_feature,
            unsigned_long=caps.unsigned_long,
            vector_size=int(vector_size) if vector_size else None,
            vector_index_options=self.vector_index_options,
        )
        try:
            self.client.indices.create(index=index_name, **body)
        except ApiError as exc:
            if "resource_already_exists" not in str(exc):
                raise
        self._vectors.pop(index_name, None)
        return True

    def delete_idx(self, index_name: str, dataset_id: str | None = None) -> None:
        """Drop the tenant index; with a dataset id this is a no-op (the index is shared)."""
        if dataset_id:
            return
        self.client.indices.delete(index=index_name, ignore_unavailable=True)
        self._vectors.pop(index_name, None)

    def index_exist(self, index_name: str, dataset_id: str | None = None) -> bool:
        return bool(self.client.indices.exists(index=index_name))

    def refresh_idx(self, index_name: str) -> None:
        self.client.indices.refresh(index=index_name)

    def count_idx(self, index_name: str, dataset_id: str | None = None) -> int:
        query = condition_query(with_dataset({}, dataset_id))
        return int(self.client.count(index=index_name, query=query)["count"])

    # -- vector fields of any dimension ----------------------------------------------------------
    def _known_vectors(self, index: str) -> dict[str, int]:
        if index not in self._vectors:
            mapping = self.client.indices.get_mapping(index=index).body
            found: dict[str, int] = {}
            for body in mapping.values():
                for name, spec in body.get("mappings", {}).get("properties", {}).items():
                    if spec.get("type") == "dense_vector" and spec.get("dims"):
                        found[name] = int(spec["dims"])
            self._vectors[index] = found
        return self._vectors[index]

    def _ensure_vector_fields(self, index: str, wanted: dict[str, int]) -> dict[str, str]:
        """Map each new `*_<dim>_vec` explicitly; returns {field: error} for those that failed."""
        known = self._known_vectors(index)
        failed: dict[str, str] = {}
        for name, dims in wanted.items():
            if name in known:
                if known[name] != dims:
                    failed[name] = f"{name} is mapped with {known[name]} dims, not {dims}"
                continue
            try:
                self.client.indices.put_mapping(
                    index=index,
                    properties={name: vector_field_mapping(dims, self.vector_index_options)},
                )
                known[name] = dims
            except ApiError as exc:
                failed[name] = f"cannot map {name}: {es_error_reason(exc)}"
                self._vectors.pop(index, None)
        return failed

    def _prepare_row(self, row: Any, dataset_id: str | None) -> tuple[str, dict[str, Any]]:
        """Validate one row; raises ValueError naming the problem (reported per id)."""
        if not isinstance(row, dict):
            raise ValueError(f"row is a {type(row).__name__}, not a dict")
        if "_id" in row:
            raise ValueError("row has '_id'; use 'id'")
        chunk_id = row.get("id")
        if chunk_id in (None, ""):
            raise ValueError("row has no 'id'")
        doc = {k: _plain(v) for k, v in row.items()}
        doc["id"] = str(chunk_id)
        if dataset_id:
            doc["kb_id"] = dataset_id
        for name, value in doc.items():
            if not name.endswith("_vec"):
                continue
            dims = vector_dims(name)
            if not isinstance(value, list) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in value
            ):
                raise ValueError(f"{name} is not a list of numbers")
            if dims is not None and len(value) != dims:
                raise ValueError(f"{name} needs {dims} dims, got {len(value)}")
        return doc["id"], doc

    # -- writes ----------------------------------------------------------------------------------
    def insert(
        self,
        rows: list[dict[str, Any]],
        index_name: str,
        knowledgebase_id: str | None = None,
        *,
        dataset_id: str | None = None,
    ) -> list[str]:
        """Upsert chunks by `id` (visible on return). Returns `["id:error", ...]`, [] when all
        rows were written; a bad row never stops the others."""
        kb = knowledgebase_id if knowledgebase_id is not None else dataset_id
        errors: list[str] = []
        if not self.client.indices.exists(index=index_name):
            self.create_idx(index_name, kb)
        prepared: list[tuple[str, dict[str, Any]]] = []
        for position, row in enumerate(rows):
            try:
                prepared.append(self._prepare_row(row, kb))
            except ValueError as exc:
                rid = row.get("id") if isinstance(row, dict) else None
                errors.append(f"{rid if rid not in (None, '') else f'row {position}'}:{exc}")
        wanted: dict[str, int] = {}
        for _, doc in prepared:
            for name in doc:
                dims = vector_dims(name)
                if dims is not None:
                    wanted[name] = dims
        failed = self._ensure_vector_fields(index_name, wanted) if wanted else {}
        operations: list[dict[str, Any]] = []
        for chunk_id, doc in prepared:
            bad = [failed[n] for n in doc if n in failed]
            if bad:
                errors.append(f"{chunk_id}:{bad[0]}")
                continue
            operations.append({"index": {"_index": index_name, "_id": chunk_id}})
            operations.append(doc)
        errors.extend(self._bulk(operations, refresh="wait_for"))
        self.last_errors = errors
        for error in errors:
            log.warning("insert into %s failed: %s", index_name, error)
        return errors

    def _bulk(self, operations: list[dict[str, Any]], *, refresh: str | bool) -> list[str]:
        """Run bulk actions in slices (refreshing after the last); errors as "id:reason"."""
        errors: list[str] = []
        step = BULK_ROWS * 2
        for start in range(0, len(operations), step):
            part = operations[start : start + step]
            last = start + step >= len(operations)
            resp = self.client.bulk(
                operations=part, refresh=refresh if last else False, timeout="60s"
            )
            if not resp.get("errors"):
                continue
            for item in resp["items"]:
                result = next(iter(item.values()))
                if "error" in result:
                    errors.append(f"{result.get('_id')}:{es_error_reason(result['error'])}")
        return errors

    def _scan(
        self, indices: list[str], query: dict[str, Any], *, source: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every hit of `query` (point in time + search_after: no window limit)."""
        body: dict[str, Any] = {
            "query": query,
            "size": SCAN_BATCH,
            "sort": [{"_shard_doc": "asc"}],
            "_source": {"exclude_vectors": False}
            if source and self._source_vectors_option
            else source,
            "seq_no_primary_term": source,
            "track_total_hits": False,
        }
        for response in pit_pages(self.client, indices, body, keep_alive=PIT_KEEP_ALIVE):
            yield from response["hits"]["hits"]

    def _get_with_version(self, index: str, chunk_id: str) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        if self._source_vectors_option:
            params["source_exclude_vectors"] = False
        try:
            res = self.client.get(index=index, id=chunk_id, **params)
        except NotFoundError:
            return None
        return res.body if res.get("found") else None

    def update(
        self,
        condition: dict[str, Any],
        new_value: dict[str, Any],
        index_name: str,
        knowledgebase_id: str | None = None,
        *,
        dataset_id: str | None = None,
    ) -> bool:
        """Update one chunk (`condition["id"]` a str: partial merge) or every match of the
        condition. False when anything failed; the reasons are in `last_errors`."""
        kb = knowledgebase_id if knowledgebase_id is not None else dataset_id
        new_value = {k: _plain(v) for k, v in (new_value or {}).items()}
        new_value.pop("id", None)
        self.last_errors = []
        try:
            if isinstance((condition or {}).get("id"), str):
                self._update_one(condition["id"], new_value, index_name, kb)
            else:
                self._update_many(condition, new_value, index_name, kb)
        except NotFoundError as exc:
            self.last_errors.append(f"{index_name}:{es_error_reason(exc)}")
        except SearchError as exc:
            self.last_errors.append(str(exc))
        for error in self.last_errors:
            log.warning("update in %s failed: %s", index_name, error)
        return not self.last_errors

    def _update_one(self, chunk_id: str, new_value: dict, index: str, kb: str | None) -> None:
        for _ in range(CONFLICT_ROUNDS):
            current = self._get_with_version(index, chunk_id)
            if current is None or (kb and current["_source"].get("kb_id") != kb):
                self.last_errors.append(f"{chunk_id}:not found in dataset {kb or '*'}")
                return
            try:
                if needs_source(new_value):
                    self.client.index(
                        index=index,
                        id=chunk_id,
                        document=apply_update(current["_source"], new_value),
                        if_seq_no=current["_seq_no"],
                        if_primary_term=current["_primary_term"],
                        refresh=True,
                    )
                else:
                    self.client.update(
                        index=index,
                        id=chunk_id,
                        doc=new_value,
                        if_seq_no=current["_seq_no"],
                        if_primary_term=current["_primary_term"],
                        refresh=True,
                    )
                return
            except ConflictError:
                continue
        self.last_errors.append(f"{chunk_id}:version conflict after {CONFLICT_ROUNDS} tries")

    def _update_many(self, condition: dict, new_value: dict, index: str, kb: str | None) -> None:
        query = condition_query(with_dataset(condition, kb))
        caps = self.capabilities
        if caps.painless and caps.update_by_query:
            resp = self.client.update_by_query(
                index=index,
                query=query,
                script=painless_script(new_value),
                refresh=True,
                conflicts="proceed",
            )
            for failure in resp.get("failures", []):
                self.last_errors.append(
                    f"{failure.get('id')}:{es_error_reason(failure.get('cause'))}"
                )
            if resp.get("version_conflicts"):
                self.last_errors.append(
                    f"{index}:{resp['version_conflicts']} chunks skipped after version conflicts"
                )
            return
        if not needs_source(new_value):
            ops: list[dict[str, Any]] = []
            for hit in self._scan([index], query):
                ops.append(
                    {"update": {"_index": hit["_index"], "_id": hit["_id"], "retry_on_conflict": 3}}
                )
                ops.append({"doc": new_value})
            self.last_errors.extend(self._bulk(ops, refresh=True))
            return
        pending = list(self._scan([index], query, source=True))
        for _ in range(CONFLICT_ROUNDS):
            ops = []
            for hit in pending:
                action = {
                    "_index": hit["_index"],
                    "_id": hit["_id"],
                    "if_seq_no": hit["_seq_no"],
                    "if_primary_term": hit["_primary_term"],
                }
                ops.append({"index": action})
                ops.append(apply_update(hit["_source"], new_value))
            errors = self._bulk(ops, refresh=True)
            conflicted = {e.split(":", 1)[0] for e in errors if "version_conflict" in e}
            self.last_errors.extend(e for e in errors if e.split(":", 1)[0] not in conflicted)
            if not conflicted:
                return
            ids_query = {"bool": {"filter": [query, {"ids": {"values": sorted(conflicted)}}]}}
            pending = list(self._scan([index], ids_query, source=True))
        self.last_errors.extend(
            f"{hit['_id']}:version conflict after {CONFLICT_ROUNDS} tries" for hit in pending
        )

    def delete(
        self,
        condition: dict[str, Any],
        index_name: str,
        knowledgebase_id: str | None = None,
        *,
        dataset_id: str | None = None,
    ) -> int:
        """Delete the dataset's chunks matching the condition (empty: all of them); returns how
        many were deleted, visible on return."""
        kb = knowledgebase_id if knowledgebase_id is not None else dataset_id
        query = condition_query(with_dataset(condition, kb))
        self.last_errors = []
        try:
            if self.capabilities.delete_by_query:
                resp = self.client.delete_by_query(
                    index=index_name, query=query, refresh=True, conflicts="proceed"
                )
                for failure in resp.get("failures", []):
                    self.last_errors.append(
                        f"{failure.get('id')}:{es_error_reason(failure.get('cause'))}"
                    )
                if resp.get("version_conflicts"):
                    self.last_errors.append(
                        f"{index_name}:{resp['version_conflicts']} chunks not deleted "
                        "(version conflicts)"
                    )
                return int(resp.get("deleted", 0))
            ops = [
                {"delete": {"_index": hit["_index"], "_id": hit["_id"]}}
                for hit in self._scan([index_name], query)
            ]
        except NotFoundError:
            return 0
        deleted = 0
        step = BULK_ROWS
        for start in range(0, len(ops), step):
            part = ops[start : start + step]
            resp = self.client.bulk(
                operations=part, refresh=start + step >= len(ops), timeout="60s"
            )
            for item in resp["items"]:
                result = item["delete"]
                if result.get("result") == "deleted":
                    deleted += 1
                elif "error" in result:
                    self.last_errors.append(
                        f"{result.get('_id')}:{es_error_reason(result['error'])}"
                    )
        return deleted

    # -- reads -----------------------------------------------------------------------------------
    def get(
        self,
        data_id: str,
        index_name: str,
        knowledgebase_ids: list[str] | None = None,
        *,
        dataset_ids: list[str] | None = None,
    ) -> dict[str, Any] | None:
        """One chunk with `id` set (vectors included), or None when absent or in another dataset."""
        kbs = _as_list(knowledgebase_ids if knowledgebase_ids is not None else dataset_ids)
        for index in _as_list(index_name):
            found = self._get_with_version(index, data_id)
            if found is None:
                continue
            chunk = dict(found["_source"])
            if kbs and chunk.get("kb_id") not in kbs:
                continue
            chunk["id"] = data_id
            return chunk
        return None

    def search(
        self,
        select_fields: list[str] | None,
        highlight_fields: list[str] | None,
        condition: dict[str, Any] | None,
        match_expressions: list[Any] | None,
        order_by: Any,
        offset: int,
        limit: int,
        index_names: str | list[str],
        knowledgebase_ids: list[str] | None = None,
        agg_fields: list[str] | None = None,
        rank_feature: dict[str, float] | None = None,
        *,
        dataset_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Filter + full-text/vector search; returns the Elasticsearch response body (a dict).

        `limit=0` means no slicing (Elasticsearch's default page; aggregation-only calls).
        Offsets past the result window page with a point in time; a kNN-only search can reach
        its 10,000 nearest neighbours at most and raises `SearchError` beyond."""
        indices = _as_list(index_names)
        kbs = knowledgebase_ids if knowledgebase_ids is not None else dataset_ids
        offset, limit = max(int(offset or 0), 0), max(int(limit or 0), 0)
        window = offset + limit if limit > 0 else 0
        plan = build_search(
            select_fields,
            highlight_fields,
            with_dataset(condition, kbs),
            match_expressions,
            order_by,
            window=window,
            agg_fields=agg_fields,
            rank_feature=rank_feature,
            rank_feature_supported=self.capabilities.rank_feature,
            fusion=self.fusion,
            source_vectors_option=self._source_vectors_option,
            knn_query_supported=self.capabilities.knn_query,
        )
        body = plan.body
        if plan.knn_only and window > KNN_CAP:
            raise SearchError(
                f"offset {offset} + limit {limit} is past the {KNN_CAP:,} nearest neighbours a "
                "kNN search can return; add a MatchTextExpr or a narrower condition"
            )
        if limit <= 0:
            res = self.client.search(index=indices, body=body).body
        elif window <= self.max_result_window:
            res = self.client.search(
                index=indices, body={**body, "from": offset, "size": limit}
            ).body
        else:
            res = self._deep_page(indices, body, offset, limit)
        if str(res.get("timed_out", "")).lower() == "true":
            raise SearchError(f"search on {indices} timed out")
        return res

    def _deep_page(
        self, indices: list[str], body: dict[str, Any], offset: int, limit: int
    ) -> dict[str, Any]:
        """from/size past the result window: skip with search_after, then read the page."""
        sort = [*(body.get("sort") or [{"_score": {"order": "desc"}}]), {"_shard_doc": "asc"}]
        base = {k: v for k, v in body.items() if k not in ("sort", "aggs", "highlight", "_source")}
        base["sort"] = sort
        first: dict[str, Any] | None = None
        took, skipped = 0, 0
        collected: list[dict[str, Any]] = []

        def next_page() -> dict[str, Any]:
            skipping = skipped < offset
            wanted = offset - skipped if skipping else limit - len(collected)
            request = {**base, "size": min(wanted, self.max_result_window)}
            request["track_total_hits"] = first is None
            if first is None and "aggs" in body:
                request["aggs"] = body["aggs"]
            if skipping:
                request["_source"] = False
            else:
                for key in ("highlight", "_source"):
                    if key in body:
                        request[key] = body[key]
            return request

        for resp in pit_pages(self.client, indices, next_page, keep_alive=PIT_KEEP_ALIVE):
            if str(resp.get("timed_out", "")).lower() == "true":
                raise SearchError(f"search on {indices} timed out")
            first = first or resp
            took += int(resp.get("took", 0))
            page = resp["hits"]["hits"]
            if skipped < offset:
                skipped += len(page)
            else:
                collected.extend(page)
            if len(collected) >= limit:
                break
        assert first is not None
        result: dict[str, Any] = {
            "took": took,
            "timed_out": False,
            "_shards": first.get("_shards", {}),
            "hits": {
                "total": first["hits"].get("total"),
                "max_score": first["hits"].get("max_score"),
                "hits": collected[:limit],
            },
        }
        if "aggregations" in first:
            result["aggregations"] = first["aggregations"]
        return result

    # -- reading responses -----------------------------------------------------------------------
    def get_total(self, res: dict[str, Any]) -> int:
        return responses.get_total(res)

    def get_doc_ids(self, res: dict[str, Any]) -> list[str]:
        return responses.get_doc_ids(res)

    def get_scores(self, res: dict[str, Any]) -> dict[str, float]:
        return responses.get_scores(res)

    def get_fields(self, res: dict[str, Any], fields: list[str]) -> dict[str, dict[str, Any]]:
        return responses.get_fields(res, fields)

    def get_highlight(
        self, res: dict[str, Any], keywords: list[str], field_name: str
    ) -> dict[str, str]:
        return responses.get_highlight(res, keywords, field_name)

    def get_aggregation(self, res: dict[str, Any], field_name: str) -> list[tuple[Any, int]]:
        return responses.get_aggregation(res, field_name)

    # -- SQL -------------------------------------------------------------------------------------
    def sql(self, sql: str, fetch_size: int = 128, format: str = "json") -> Any:
        """Run text-to-SQL output through Elasticsearch SQL (needs the x-pack-sql module)."""
        if not self.capabilities.sql:
            raise CapabilityError(
                "sql(): this cluster has no SQL module (x-pack-sql); RAGFlow falls back to "
                "vector search when sql() raises"
            )
        return self.client.sql.query(
            query=rewrite_sql(sql), fetch_size=fetch_size, format=format, request_timeout="2s"
        )

    # -- RAGFlow < 0.21 camelCase names ----------------------------------------------------------
    dbType = db_type
    createIdx = create_idx
    deleteIdx = delete_idx
    indexExist = index_exist
    getTotal = get_total
    getChunkIds = get_doc_ids
    getDocIds = get_doc_ids
    getFields = get_fields
    getHighlight = get_highlight
    getAggregation = get_aggregation
    getScores = get_scores
    refreshIdx = refresh_idx
