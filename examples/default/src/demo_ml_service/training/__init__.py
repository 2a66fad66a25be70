"""Training-time code: fit on governed data (train), score (quality), gate (evaluate).

Needs the training stack (MLflow, pandas, matplotlib); the serving image never imports it.
"""
