"""Index management: definitions in mappings/, versioned indices behind aliases, the model guard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from essearch._lazy import lazy_getattr

# Names load on first use, so importing a submodule (or the CLI) stays cheap.
_LAZY = {
    "schema": "essearch.index.schema",
    "Definition": "essearch.index.definitions",
    "VectorSpec": "essearch.index.definitions",
    "available_definitions": "essearch.index.definitions",
    "load_definition": "essearch.index.definitions",
    "render": "essearch.index.definitions",
    "validate_vector": "essearch.index.definitions",
    "vector_problem": "essearch.index.definitions",
    "check_mapping_response": "essearch.index.guard",
    "check_model": "essearch.index.guard",
    "model_from_mapping": "essearch.index.guard",
    "models_from_mapping_response": "essearch.index.guard",
    "Difference": "essearch.index.diff",
    "DropPlan": "essearch.index.manager",
    "IndexInfo": "essearch.index.manager",
    "IndexManager": "essearch.index.manager",
    "IndexStatus": "essearch.index.manager",
    "InitResult": "essearch.index.manager",
    "compare_body": "essearch.index.diff",
    "swap_actions": "essearch.index.diff",
}

if TYPE_CHECKING:
    from essearch.index import schema
    from essearch.index.definitions import (
        Definition,
        VectorSpec,
        available_definitions,
        load_definition,
        render,
        validate_vector,
        vector_problem,
    )
    from essearch.index.diff import Difference, compare_body, swap_actions
    from essearch.index.guard import (
        check_mapping_response,
        check_model,
        model_from_mapping,
        models_from_mapping_response,
    )
    from essearch.index.manager import (
        DropPlan,
        IndexInfo,
        IndexManager,
        IndexStatus,
        InitResult,
    )


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "Definition",
    "Difference",
    "DropPlan",
    "IndexInfo",
    "IndexManager",
    "IndexStatus",
    "InitResult",
    "VectorSpec",
    "available_definitions",
    "check_mapping_response",
    "check_model",
    "compare_body",
    "load_definition",
    "model_from_mapping",
    "models_from_mapping_response",
    "render",
    "schema",
    "swap_actions",
    "validate_vector",
    "vector_problem",
]
