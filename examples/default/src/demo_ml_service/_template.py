"""Stamped by the slipway template at render time; `copier update` refreshes it.

The only Python module of the package rendered with the answers: every other module reads them
from here, so it stays plain Python that ruff, mypy and an editor understand.
"""

TEMPLATE_VERSION = "unversioned"
PROJECT_NAME = "Demo ML Service"
PROJECT_SLUG = "demo-ml-service"
PACKAGE_NAME = "demo_ml_service"
MODEL_TASK = "classification"
# The `mlflow_tracking_uri` answer; blank = the embedded sqlite store inside the repo.
TRACKING_URI_ANSWER = ""
# The `tracing_exporter` answer (OTEL_TRACES_EXPORTER overrides it at run time).
TRACES_EXPORTER_ANSWER = "console"
