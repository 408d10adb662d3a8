"""Retrieval evaluation on BEIR-layout datasets (`essearch eval`).

`beir` loads a split (judged queries only), `index` builds or reuses the evaluation index,
`runner` runs each mode and scores it with ranx (`metrics`), `report` renders the results.
Entry point: `essearch.eval.runner.evaluate_dataset(...)`.
"""
