"""Batch scoring: a registered version scores a file, a Parquet dataset or a SQL query into a
Parquet dataset or a database table, locally in bounded memory or on Spark (docs/batch-scoring.md).

Above the registry and the serving guardrails it reuses, below the CLI: `<package> batch-score`.
"""
