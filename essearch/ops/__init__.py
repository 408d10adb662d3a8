"""Operations on versioned indices: zero-downtime reindex / embedding migration, rollback, gc."""

from essearch.ops.copier import Copier, CopyStats, choose_copy_strategy, reindex_body
from essearch.ops.gc import GcPlan, gc, plan_gc
from essearch.ops.reindex import (
    MigrationPlan,
    ReindexOptions,
    ReindexResult,
    plan_reindex,
    run_reindex,
)
from essearch.ops.rollback import RollbackPlan, RollbackResult, plan_rollback, rollback
from essearch.ops.verify import VerifyReport, verify

__all__ = [
    "Copier",
    "CopyStats",
    "GcPlan",
    "MigrationPlan",
    "ReindexOptions",
    "ReindexResult",
    "RollbackPlan",
    "RollbackResult",
    "VerifyReport",
    "choose_copy_strategy",
    "gc",
    "plan_gc",
    "plan_reindex",
    "plan_rollback",
    "reindex_body",
    "rollback",
    "run_reindex",
    "verify",
]
