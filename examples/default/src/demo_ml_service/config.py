"""Runtime configuration: environment variables (prefix SERVICE_) and standard MLflow/OTel ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._template import PROJECT_SLUG, TRACES_EXPORTER_ANSWER, TRACKING_URI_ANSWER
from .lifecycle import CHAMPION

# The repo root when running from a checkout; inside the image, /app.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A blank answer at copy time = the embedded sqlite store inside the repo.
DEFAULT_TRACKING_URI = TRACKING_URI_ANSWER or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
TracesExporter = Literal["none", "console", "otlp"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SERVICE_", extra="ignore", protected_namespaces=(), populate_by_name=True
    )

    environment: Literal["dev", "staging", "prod"] = "dev"
    slo_path: Path = PROJECT_ROOT / "slo.yaml"
    contract_path: Path = PROJECT_ROOT / "data" / "contract.yaml"
    train_path: Path = PROJECT_ROOT / "data" / "train.csv"
    golden_path: Path = PROJECT_ROOT / "data" / "golden.csv"
    # Where the data comes from (data/sources.yaml) and where `ingest` writes its snapshots.
    sources_path: Path = PROJECT_ROOT / "data" / "sources.yaml"
    snapshots_dir: Path = PROJECT_ROOT / "data" / "snapshots"
    # The recorded champion (kept in git, updated by promote): the gate's baseline when the
    # registry has no champion (e.g. a CI run with a fresh embedded registry).
    baseline_path: Path = PROJECT_ROOT / "data" / "baseline.json"
    reports_dir: Path = PROJECT_ROOT / "reports"

    model_name: str = PROJECT_SLUG
    model_alias: str = CHAMPION
    # When set, the service loads this exported model directory (baked into the image) instead of
    # asking the registry: no registry needed at start-up, one immutable image per model version.
    model_dir: Path | None = None
    # What predicts from an exported folder: "auto" = its parity-checked ONNX copy with ONNX
    # Runtime when it has one, else scikit-learn; "onnx" = ONNX or refuse to start; "sklearn".
    inference_runtime: Literal["auto", "onnx", "sklearn"] = "auto"

    tracking_uri: str = Field(default=DEFAULT_TRACKING_URI, validation_alias="MLFLOW_TRACKING_URI")
    # A model that cannot be loaded at start-up is retried in the background: first after this
    # many seconds, then twice as long each time, at most the max (/readyz is 503 meanwhile).
    model_load_retry_seconds: float = Field(default=2.0, gt=0)
    model_load_retry_max_seconds: float = Field(default=60.0, gt=0)
    artifact_root: Path = PROJECT_ROOT / "mlartifacts"

    host: str = "127.0.0.1"
    port: int = 8000
    # /metrics is served on its own port (not the API's): scrapes never queue behind predictions,
    # and the API port can be exposed without exposing the metrics.
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    # Worker processes of `serve` on the API port (SERVICE_WORKERS; 0 = one per available CPU:
    # the cgroup CPU limit, else the CPUs this process may run on). With more than one, /metrics
    # aggregates them (prometheus-client multiprocess mode, docs/performance.md).
    workers: int = Field(default=1, ge=0, le=256)
    log_level: str = "INFO"
    traces_exporter: TracesExporter = Field(
        default=cast(TracesExporter, TRACES_EXPORTER_ANSWER),
        validation_alias="OTEL_TRACES_EXPORTER",
    )
    # Tracing, metric updates and access logs (off only to measure their cost: `make bench`).
    telemetry_enabled: bool = True
    # Share of requests traced (parent-based: a traced caller's requests are always traced).
    # The standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG win when set.
    trace_sample_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    # Access log: every request, or (default) only errors, slow and traced requests.
    access_log_all: bool = False
