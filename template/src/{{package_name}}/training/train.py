"""Fit the model on governed data and register it as the `challenger`.

Logged with every run: params, training metrics, the training data's sha256, the git commit and
the slipway template version; the drift reference profile is stored as a run artefact.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import sklearn
from mlflow.models import infer_signature

from .._template import TEMPLATE_VERSION
from ..artifact import REFERENCE_DIR, REFERENCE_FILE, SERIALIZATION_FORMAT, ReferenceProfile
from ..config import PROJECT_ROOT, Settings
from ..data.contract import DataContract
from ..data.loaders import data_hash, load_dataset
from ..lifecycle import (
    CHALLENGER,
    DATA_HASH_TAG,
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


def train(settings: Settings) -> TrainResult:
    slo = load_slo(settings.slo_path)
    contract = DataContract.load(settings.contract_path)
    features, target = load_dataset(settings.train_path, contract)
    pipeline = build_pipeline()
    pipeline.fit(features, target)
    metrics = {
        f"train_{k}": v for k, v in score(slo.model_task, pipeline, features, target).items()
    }

    registry = Registry.from_settings(settings)
    digest = data_hash(settings.train_path)
    tags = {
        DATA_HASH_TAG: digest,
        GIT_COMMIT_TAG: git_commit(),
        TEMPLATE_VERSION_TAG: TEMPLATE_VERSION,
        MODEL_TASK_TAG: slo.model_task,
    }
    with (
        process_wide_uris(settings.tracking_uri),
        mlflow.start_run(experiment_id=registry.experiment_id(), tags=tags) as run,
    ):
        mlflow.log_params({**PARAMS, "n_train_rows": len(target), "n_features": features.shape[1]})
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            profile = Path(tmp) / REFERENCE_FILE
            ReferenceProfile.from_training(contract.feature_names, features).to_json(profile)
            mlflow.log_artifact(str(profile), artifact_path=REFERENCE_DIR)
        logged = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format=SERIALIZATION_FORMAT,  # what the artifact loader reads (no pickle)
            signature=infer_signature(features[:5], pipeline.predict(features[:5])),
            # Stated, not inferred: inference shells out to the package manager (seconds per run).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"],
        )
        log_onnx(pipeline, features, slo.model_task)  # optional compiled copy (artifact/onnx.py)
        version = registry.register(logged.model_uri, run.info.run_id, tags, logged.model_id)
    registry.set_alias(CHALLENGER, version.version)
    return TrainResult(version.version, run.info.run_id, metrics, digest)
