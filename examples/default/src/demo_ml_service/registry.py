"""The model registry: a thin layer over the real MLflow client.

Embedded default: a sqlite store and an artefact folder inside the repo; remote: the
MLFLOW_TRACKING_URI. Aliases: `challenger` (set by train) and `champion` (set by promote,
gated on a passing eval report).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .artifact import REFERENCE_DIR, LoadedModel, ModelMetadata, load_model_dir
from .artifact.onnx import ONNX_DIR, Runtime
from .config import Settings
from .errors import ModelNotFound, RegistryUnavailable
from .errors import RegistryError as RegistryError  # re-exported: it used to live here
from .lifecycle import (
    CHALLENGER,
    CHAMPION,
    DATA_CREATED_AT_TAG,
    DATA_HASH_TAG,
    DATA_QUERY_TAG,
    DATA_ROWS_TAG,
    DATA_SOURCE_TAG,
    EVAL_PASSED_TAG,
    EVAL_SUMMARY_TAG,
    HISTORY_TAG,
    PROMOTED_AT_TAG,
    TEMPLATE_VERSION_TAG,
)

URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# MLflow's answers that mean "does not exist" (an unknown alias is an invalid parameter)...
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
# ...and the ones that mean the credentials were refused.
ACCESS_DENIED_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


def is_not_found(error: MlflowException) -> bool:
    return error.error_code in NOT_FOUND_CODES or (
        error.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(error).lower()
    )


def redact(text: str) -> str:
    """`text` with the credentials of any URL in it (scheme://user:password@host) masked."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def classify(error: MlflowException, uri: str, what: str) -> RegistryError:
    """ "Not found" (the registry answered) vs "cannot reach" (it could not be asked)."""
    uri = redact(uri)
    if is_not_found(error):
        return ModelNotFound(f"{what} not found in {uri}")
    if error.error_code in ACCESS_DENIED_CODES:
        return RegistryUnavailable(
            f"the registry at {uri} refused the credentials ({error.error_code}): "
            "check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
        )
    return RegistryUnavailable(f"cannot reach the registry at {uri}: {redact(error.message)}")


@contextmanager
def process_wide_uris(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking and registry URIs at `uri` while MLflow's fluent APIs
    (start_run, log_*, models:/ downloads) run, then restore them and the environment variables
    MLflow sets with them (Settings reads MLFLOW_TRACKING_URI): a Registry stays bound to its own
    store whatever another one in the same process (a test, a notebook) used."""
    saved_env = {name: os.environ.get(name) for name in URI_VARIABLES}
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def training_data(tags: dict[str, str]) -> dict[str, Any]:
    """The training snapshot recorded on a version (empty for versions trained before `ingest`)."""
    if DATA_SOURCE_TAG not in tags:
        return {}
    rows = tags.get(DATA_ROWS_TAG, "")
    return {
        "source": tags[DATA_SOURCE_TAG],
        "query": tags.get(DATA_QUERY_TAG) or None,
        "rows": int(rows) if rows.isdigit() else None,
        "sha256": tags.get(DATA_HASH_TAG, ""),
        "created_at": tags.get(DATA_CREATED_AT_TAG, ""),
    }


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]

    @property
    def eval_passed(self) -> bool:
        return self.tags.get(EVAL_PASSED_TAG) == "true"


class Registry:
    def __init__(
        self, tracking_uri: str, model_name: str, artifact_root: Path | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.artifact_root = artifact_root
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The registry this repo's settings name (MLFLOW_TRACKING_URI, model name, artefacts)."""
        return cls(settings.tracking_uri, settings.model_name, settings.artifact_root)

    # -- experiments and registration -------------------------------------------------------
    def experiment_id(self) -> str:
        """This model's experiment, created on first use (local artefacts go to artifact_root)."""
        existing = self.client.get_experiment_by_name(self.model_name)
        if existing is not None:
            return str(existing.experiment_id)
        location = None
        if self.artifact_root is not None and self.tracking_uri.startswith("sqlite:"):
            self.artifact_root.mkdir(parents=True, exist_ok=True)
            location = self.artifact_root.resolve().as_uri()
        return str(self.client.create_experiment(self.model_name, artifact_location=location))

    def register(
        self, model_uri: str, run_id: str, tags: dict[str, str], model_id: str | None = None
    ) -> VersionInfo:
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if not is_not_found(error):
                raise classify(error, self.tracking_uri, f"model {self.model_name}") from error
            self.client.create_registered_model(self.model_name)
        version = self.client.create_model_version(
            # A tracking server requires the logged model's id beside a `models:/m-…` source.
            self.model_name,
            source=model_uri,
            run_id=run_id,
            tags=tags,
            model_id=model_id,
        )
        return self.version(str(version.version))

    # -- aliases ----------------------------------------------------------------------------
    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def get_alias(self, alias: str) -> VersionInfo | None:
        """The aliased version; None when it does not exist, RegistryUnavailable when the
        registry cannot be asked."""
        try:
            found = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as error:
            if is_not_found(error):
                return None
            raise classify(error, self.tracking_uri, f"alias '{alias}'") from error
        return self._info(found)

    def version(self, version: str) -> VersionInfo:
        try:
            found = self.client.get_model_version(self.model_name, version)
        except MlflowException as error:
            what = f"version {version} of {self.model_name}"
            raise classify(error, self.tracking_uri, what) from error
        return self._info(found)

    def _info(self, found: Any) -> VersionInfo:
        return VersionInfo(
            name=found.name,
            version=str(found.version),
            run_id=found.run_id,
            source=found.source,
            tags=dict(found.tags or {}),
        )

    # -- evaluation, promotion, rollback -------------------------------------------------------
    def record_eval(self, version: str, passed: bool, summary: dict[str, Any]) -> None:
        self.client.set_model_version_tag(
            self.model_name, version, EVAL_PASSED_TAG, "true" if passed else "false"
        )
        self.client.set_model_version_tag(
            self.model_name, version, EVAL_SUMMARY_TAG, json.dumps(summary, sort_keys=True)
        )

    def champion_history(self) -> list[str]:
        try:
            tags = self.client.get_registered_model(self.model_name).tags or {}
        except MlflowException as error:
            if is_not_found(error):
                return []
            raise classify(error, self.tracking_uri, f"model {self.model_name}") from error
        raw = tags.get(HISTORY_TAG, "")
        return [v for v in raw.split(",") if v]

    def promote(self, version: str | None = None) -> VersionInfo:
        """Make `version` (default: the challenger) the champion, if its eval report passed."""
        if version is None:
            challenger = self.get_alias(CHALLENGER)
            if challenger is None:
                raise ModelNotFound(
                    f"no '{CHALLENGER}' version of {self.model_name}: train one first"
                )
            version = challenger.version
        candidate = self.version(version)
        if EVAL_PASSED_TAG not in candidate.tags:
            raise RegistryError(
                f"version {version} has no eval report: run the eval gate before promoting"
            )
        if not candidate.eval_passed:
            raise RegistryError(
                f"version {version} failed the eval gate: it cannot become {CHAMPION}"
            )
        current = self.get_alias(CHAMPION)
        if current is not None and current.version == version:
            return candidate
        history = self.champion_history()
        if current is not None and (not history or history[-1] != current.version):
            history.append(current.version)
        history.append(version)
        self.set_alias(CHAMPION, version)
        self.client.set_registered_model_tag(self.model_name, HISTORY_TAG, ",".join(history))
        self.client.set_model_version_tag(
            self.model_name,
            version,
            PROMOTED_AT_TAG,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        return candidate

    def rollback(self) -> VersionInfo:
        """Move `champion` back to the previous champion."""
        history = self.champion_history()
        if len(history) < 2:
            raise RegistryError(
                "no previous champion to roll back to (the champion history has "
                f"{len(history)} entr{'y' if len(history) == 1 else 'ies'})"
            )
        history.pop()
        previous = history[-1]
        self.set_alias(CHAMPION, previous)
        self.client.set_registered_model_tag(self.model_name, HISTORY_TAG, ",".join(history))
        return self.version(previous)

    # -- loading ---------------------------------------------------------------------------------
    def export(self, alias: str, out_dir: Path, version: str | None = None) -> VersionInfo:
        """Write the aliased version (model, drift reference, metadata) to a standalone folder;
        `version`, when given, is exported instead of the alias (the folder records both)."""
        info = self.version(version) if version is not None else self.get_alias(alias)
        if info is None:
            raise ModelNotFound(
                f"no '{alias}' version of {self.model_name} in {redact(self.tracking_uri)}"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            with process_wide_uris(self.tracking_uri):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{self.model_name}/{info.version}",
                    dst_path=str(out_dir),
                    tracking_uri=self.tracking_uri,
                )
            if info.run_id:
                self.client.download_artifacts(info.run_id, REFERENCE_DIR, str(out_dir))
                if self.client.list_artifacts(info.run_id, ONNX_DIR):  # optional (artifact/onnx.py)
                    self.client.download_artifacts(info.run_id, ONNX_DIR, str(out_dir))
        except MlflowException as error:
            what = f"the artefacts of {self.model_name} version {info.version}"
            raise classify(error, self.tracking_uri, what) from error
        ModelMetadata(
            name=self.model_name,
            version=info.version,
            alias=alias,
            run_id=info.run_id,
            data_hash=info.tags.get(DATA_HASH_TAG, ""),
            template_version=info.tags.get(TEMPLATE_VERSION_TAG, ""),
            training_data=training_data(info.tags),
        ).write(out_dir)
        return info

    def download_onnx(self, version: str, out_dir: Path) -> bool:
        """The ONNX copy of a version (`onnx/` of its run) into out_dir; False when it has none."""
        info = self.version(version)
        if not info.run_id or not self.client.list_artifacts(info.run_id, ONNX_DIR):
            return False
        self.client.download_artifacts(info.run_id, ONNX_DIR, str(out_dir))
        return True

    def load(self, alias: str, runtime: Runtime = "sklearn") -> LoadedModel:
        with tempfile.TemporaryDirectory(prefix="model-") as tmp:
            self.export(alias, Path(tmp))
            return load_model_dir(Path(tmp), runtime)
