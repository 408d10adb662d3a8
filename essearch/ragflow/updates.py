"""RAGFlow's update semantics as a pure function over `_source`, plus the painless equivalent.

`new_value` keys: plain fields are assigned (a `*_feas` object is *replaced*, never merged);
`remove: "field"` drops a field; `remove: {"list_field": value}` removes a value from a list;
`add: {"list_field": value}` appends to a list.
"""

from __future__ import annotations

import copy
from typing import Any

from essearch.errors import SearchError


def needs_source(new_value: dict[str, Any]) -> bool:
    """Whether the update can't be a partial-document merge (removals, appends, `*_feas`)."""
    return any(k in ("remove", "add") or k.endswith("_feas") for k in new_value)


def apply_update(source: dict[str, Any], new_value: dict[str, Any]) -> dict[str, Any]:
    """The document after the update (the input is not modified)."""
    doc = copy.deepcopy(source)
    for key, value in new_value.items():
        if key == "remove":
            if isinstance(value, str):
                doc.pop(value, None)
            elif isinstance(value, dict):
                for fld, item in value.items():
                    current = doc.get(fld)
                    if isinstance(current, list):
                        items = item if isinstance(item, list) else [item]
                        doc[fld] = [x for x in current if x not in items]
            else:
                raise SearchError(
                    f"update 'remove': expected a field name or a dict, got {value!r}"
                )
        elif key == "add":
            if not isinstance(value, dict):
                raise SearchError(f"update 'add': expected a dict, got {value!r}")
            for fld, item in value.items():
                current = doc.get(fld)
                current = (
                    [] if current is None else current if isinstance(current, list) else [current]
                )
                current.extend(item if isinstance(item, list) else [item])
                doc[fld] = current
        else:
            doc[key] = copy.deepcopy(value)
    return doc


def painless_script(new_value: dict[str, Any]) -> dict[str, Any]:
    """The same update as one painless script for `_update_by_query` (values passed as params,
    lists as real lists, not the JSON strings RAGFlow sends)."""
    lines: list[str] = []
    params: dict[str, Any] = {}
    for i, (key, value) in enumerate(new_value.items()):
        if key == "remove":
            if isinstance(value, str):
                params[f"r{i}"] = value
                lines.append(f"ctx._source.remove(params.r{i});")
            else:
                for j, (fld, item) in enumerate(value.items()):
                    params[f"f{i}_{j}"], params[f"v{i}_{j}"] = (
                        fld,
                        item if isinstance(item, list) else [item],
                    )
                    lines.append(
                        f"if (ctx._source[params.f{i}_{j}] instanceof List) "
                        f"{{ ctx._source[params.f{i}_{j}].removeAll(params.v{i}_{j}); }}"
                    )
        elif key == "add":
            for j, (fld, item) in enumerate(value.items()):
                params[f"f{i}_{j}"], params[f"v{i}_{j}"] = (
                    fld,
                    item if isinstance(item, list) else [item],
                )
                target = f"ctx._source[params.f{i}_{j}]"
                lines.append(
                    f"if ({target} == null) {{ {target} = []; }}"
                    f" else if (!({target} instanceof List)) {{ {target} = [{target}]; }}"
                    f" {target}.addAll(params.v{i}_{j});"
                )
        else:
            params[f"k{i}"], params[f"p{i}"] = key, value
            lines.append(f"ctx._source[params.k{i}] = params.p{i};")
    return {"source": " ".join(lines), "lang": "painless", "params": params}
