"""Names of a model version's life in the registry: its aliases and the tags slipway sets.

MLflow-free, at the bottom of the import graph: the CLI's defaults, the service's settings and
the registry all spell an alias or a tag the same way.
"""

from __future__ import annotations

# `train` aliases a new version `challenger`; a gated `promote` moves `champion` to it.
CHALLENGER = "challenger"
CHAMPION = "champion"

# Version tags written by train / evaluate / promote.
DATA_HASH_TAG = "slipway.data_hash"
GIT_COMMIT_TAG = "slipway.git_commit"
TEMPLATE_VERSION_TAG = "slipway.template_version"
MODEL_TASK_TAG = "slipway.model_task"
EVAL_PASSED_TAG = "slipway.eval.passed"
EVAL_SUMMARY_TAG = "slipway.eval.summary"
PROMOTED_AT_TAG = "slipway.promoted_at"
# Registered-model tag: the champion versions in order, for rollback.
HISTORY_TAG = "slipway.champion_history"
# The training snapshot of a version (written by train from `ingest`'s manifest).
DATA_SOURCE_TAG = "slipway.data.source"
DATA_QUERY_TAG = "slipway.data.query"
DATA_ROWS_TAG = "slipway.data.rows"
DATA_CREATED_AT_TAG = "slipway.data.created_at"
# The feature set a version was trained on (names, types, categories), as JSON.
FEATURES_TAG = "slipway.features"
