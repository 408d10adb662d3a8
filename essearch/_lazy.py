"""Lazy package exports: a name in a package's public surface is imported on first use.

`essearch`, `essearch.index` and `essearch.retrieval` re-export names from heavy modules (the
Elasticsearch client, pydantic models); importing them eagerly would cost every CLI command its
start-up time. Each package keeps a table of name -> module and takes its `__getattr__` from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `table[name]` on first access and keeps
    the value in the package's namespace (a name that is itself a module is that module)."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = importlib.import_module(module)
        value = loaded if module.rsplit(".", 1)[-1] == name else getattr(loaded, name)
        namespace[name] = value
        return value

    return __getattr__
