"""Index management: definitions in mappings/, versioned indices behind aliases, the model guard."""

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
