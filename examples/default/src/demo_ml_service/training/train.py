"""Fit the model on governed data and register it as the `challenger`.

Reads the current training snapshot (`ingest`; the first run ingests data/sources.yaml itself),
never a live source. Logged with every run: params, training metrics, the snapshot (source, query,
rows, digest: tags, an MLflow dataset input and the Parquet file itself as an artefact), the
feature set, the git commit and the slipway template version; the drift reference profile too.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import sklearn
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature

from .._template import TEMPLATE_VERSION
from ..artifact import REFERENCE_DIR, REFERENCE_FILE, SERIALIZATION_FORMAT, ReferenceProfile
from ..config import PROJECT_ROOT, Settings
from ..data.contract import DataContract
from ..data.loaders import load_dataset, read_frame
from ..data.snapshots import Snapshot, current, ingest
from ..lifecycle import (
    CHALLENGER,
    DATA_CREATED_AT_TAG,
    DATA_HASH_TAG,
    DATA_QUERY_TAG,
    DATA_ROWS_TAG,
    DATA_SOURCE_TAG,
    FEATURES_TAG,
    GIT_COMMIT_TAG,
    MODEL_TASK_TAG,
    TEMPLATE_VERSION_TAG,
)
from ..model import PARAMS, build_pipeline
from ..registry import Registry, process_wide_uris
from ..slo import load_slo
from .compiled import log_onnx
from .quality import score


@dataclass(frozen=True)
class TrainResult:
    version: str
    run_id: str
    metrics: dict[str, float]
    data_hash: str


def git_commit(root: Path = PROJECT_ROOT) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def feature_signature(contract: DataContract) -> str:
    """The feature set as JSON (names, types, categories): two versions are comparable on the
    golden set only when theirs are equal."""
    return json.dumps(
        [[f.name, f.dtype, list(f.categories or ())] for f in contract.features],
        separators=(",", ":"),
    )


def snapshot_for(settings: Settings, kind: str, contract: DataContract) -> Snapshot:
    """The current snapshot of `kind`; on a fresh checkout (no snapshot yet) `ingest` runs first,
    so `copier copy` + `make train` works offline on the shipped sample."""
    snapshot = current(settings.snapshots_dir, kind)
    if snapshot is None:
        snapshot = ingest(settings.sources_path, contract, settings.snapshots_dir)[kind]
    return snapshot


def trusted_types(pipeline: object) -> list[str]:
    """The types skops must be allowed to build to load this fitted pipeline (tree ensembles
    hold sklearn.tree._tree.Tree, boosting libraries their own classes), derived from the
    pipeline itself rather than listed by hand."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))


def make_pipeline(contract: DataContract) -> Any:
    """The team's build_pipeline(), given the contract when it takes one (model.py is team-owned
    and may predate the parameter)."""
    # Typed loosely on purpose: mypy must accept both signatures of the team's function.
    build: Callable[..., Any] = build_pipeline
    if "contract" in inspect.signature(build).parameters:
        return build(contract=contract)
    return build()


def train(settings: Settings, pipeline: Any | None = None) -> TrainResult:
    """Fit model.py's pipeline (or `pipeline`, an unfitted estimator: a notebook, a test) on the
    current training snapshot and register it as the challenger."""
    slo = load_slo(settings.slo_path)
    contract = DataContract.load(settings.contract_path)
    snapshot = snapshot_for(settings, "training", contract)
    snapshot_file = snapshot.path(settings.snapshots_dir)
    features, target = load_dataset(snapshot_file, contract)
    if pipeline is None:
        pipeline = make_pipeline(contract)
    pipeline.fit(features, target)
    metrics = {
        f"train_{k}": v for k, v in score(slo.model_task, pipeline, features, target).items()
    }

    registry = Registry.from_settings(settings)
    digest = snapshot.sha256
    tags = {
        DATA_HASH_TAG: digest,
        DATA_SOURCE_TAG: snapshot.source,
        DATA_QUERY_TAG: snapshot.query or "",
        DATA_ROWS_TAG: str(snapshot.rows),
        DATA_CREATED_AT_TAG: snapshot.created_at,
        FEATURES_TAG: feature_signature(contract),
        GIT_COMMIT_TAG: git_commit(),
        TEMPLATE_VERSION_TAG: TEMPLATE_VERSION,
        MODEL_TASK_TAG: slo.model_task,
    }
    with (
        process_wide_uris(settings.tracking_uri),
        mlflow.start_run(experiment_id=registry.experiment_id(), tags=tags) as run,
    ):
        estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        mlflow.log_params(
            {
                **PARAMS,
                "estimator": type(estimator).__name__,
                "n_train_rows": len(target),
                "n_features": features.shape[1],
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_input(
            # The snapshot file is the dataset's source (its origin is in the tags above).
            from_pandas(read_frame(snapshot_file), source=str(snapshot_file), name=snapshot.file),
            context="training",
        )
        mlflow.log_artifact(str(snapshot_file), artifact_path="snapshot")
        with tempfile.TemporaryDirectory() as tmp:
            profile = Path(tmp) / REFERENCE_FILE
            ReferenceProfile.from_training(contract.feature_names, features).to_json(profile)
            mlflow.log_artifact(str(profile), artifact_path=REFERENCE_DIR)
        logged = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format=SERIALIZATION_FORMAT,  # what the artifact loader reads (no pickle)
            skops_trusted_types=trusted_types(pipeline),
            signature=infer_signature(features[:5], pipeline.predict(features[:5])),
            # Stated, not inferred: inference shells out to the package manager (seconds per run).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"],
        )
        log_onnx(pipeline, features, slo.model_task)  # optional compiled copy (artifact/onnx.py)
        version = registry.register(logged.model_uri, run.info.run_id, tags, logged.model_id)
    registry.set_alias(CHALLENGER, version.version)
    return TrainResult(version.version, run.info.run_id, metrics, digest)
