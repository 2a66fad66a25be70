"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid (positive) and invalid (negative) by the schema:
the service must never answer 5xx, and every answer must match the status codes, content types
and response schemas the document declares. `make fuzz` runs many more cases (FUZZ_EXAMPLES)
than the default test run.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import Settings
from demo_ml_service.serving.app import create_app

# Generated cases per operation and mode: a quick sweep by default, `make fuzz` sets 500.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))

# A body that breaks the schema must be refused with one of these: 413 included, because a batch
# over `maxItems` (guardrails.max_batch_size) is refused as too large, as documented.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 404, 405, 406, 413, 415, 422, 429],
            }
        }
    }
)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_api_conforms_to_its_openapi_document(champion: LoadedModel, mode: GenerationMode) -> None:
    app = create_app(Settings(traces_exporter="none"), model=champion)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    statuses: Counter[tuple[str, int]] = Counter()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is invalid
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not len(operation.body):
            continue  # nothing to make invalid in a GET without parameters

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call_and_validate()  # not a 5xx, and conforms to the document
            statuses[(case.operation.label, response.status_code)] += 1

        fuzz()
    assert all(status < 500 for _, status in statuses), statuses
    cases = statuses.total()
    print(f"{mode.value}: {cases} cases, statuses {sorted(statuses.items())}")
    predict_cases = sum(n for (label, _), n in statuses.items() if label == "POST /predict")
    assert predict_cases >= FUZZ_EXAMPLES // 2, statuses  # the fuzzer really reached /predict
