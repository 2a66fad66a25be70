"""Metrics computed when /metrics is scraped: model info and readiness, drift PSI, cost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Literal, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..._template import TEMPLATE_VERSION
from ...artifact import LoadedModel
from ...ops import metrics as names
from .cost import CostMeter
from .drift_window import DriftWindow


class ScrapeSource(Protocol):
    """What the collector reads at a scrape (the Telemetry facade is one)."""

    scraped_model: LoadedModel | None
    cost: CostMeter

    def drift_window(self, model: LoadedModel | None) -> DriftWindow | None: ...


class ScrapeTimeCollector:
    """Model info/readiness, drift PSI and cost: read from live state at each scrape."""

    def __init__(self, telemetry: ScrapeSource) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        t = self.telemetry
        model = t.scraped_model
        info = gauge_family(names.MODEL_INFO)
        if model is not None:
            info.add_metric([model.name, model.version, model.alias, TEMPLATE_VERSION], 1.0)
        yield info
        yield gauge_family(names.MODEL_READY, float(model is not None))
        age = gauge_family(names.TRAINING_DATA_AGE)
        if model is not None and model.training_data_epoch is not None:
            age.add_metric([], max(0.0, time.time() - model.training_data_epoch))
        yield age
        drift = gauge_family(names.FEATURE_DRIFT_PSI)
        window = t.drift_window(model)
        if window is not None:
            for feature, value in window.psi().items():
                drift.add_metric([feature], value)
        yield drift
        yield from cost_families(t.cost)


def gauge_family(name: str, value: float | None = None) -> GaugeMetricFamily:
    """A gauge family of an exported metric, with the help and labels of ops/metrics.py: with
    `value`, its one sample; else empty, for add_metric."""
    spec = names.EXPORTED[name]
    if value is not None:
        return GaugeMetricFamily(name, spec.help, value=value)
    return GaugeMetricFamily(name, spec.help, labels=list(spec.labels))


def cost_families(cost: CostMeter) -> Iterator[Metric]:
    """The per-prediction cost gauge and the accrued cost counter of `cost`."""
    total, per_prediction = cost.snapshot()
    yield gauge_family(names.PREDICTION_COST, per_prediction)
    # CounterMetricFamily appends `_total` to the family name.
    yield CounterMetricFamily(
        names.PREDICTION_COST,
        names.EXPORTED[names.PREDICTION_COST_TOTAL].help,
        value=total,
    )


class PublishedGauges:
    """Several workers (`serve --workers N`): the scrape-time gauges a worker writes to its
    prometheus-client multiprocess files (PROMETHEUS_MULTIPROC_DIR) every few seconds, for the
    one /metrics server of the parent process. How the workers' values combine:

    - model info: `livemax`, one series per served model (value 1) while a worker serves it;
    - model ready: `livemin`, 1 only when every live worker has its model loaded;
    - drift PSI: `livemax`, the worst of the workers' windows (each sees its share of traffic);
    - training data age: `livemax`, the oldest snapshot a live worker serves.

    The cost gauges are computed by the parent from the summed prediction counter (workers.py).
    """

    def __init__(self) -> None:
        from prometheus_client import Gauge  # values in multiprocess files: the env var is set

        def gauge(name: str, mode: Literal["livemin", "livemax"]) -> Gauge:
            # registry=None: not in the worker's registry (nobody scrapes a worker), only files.
            spec = names.EXPORTED[name]
            return Gauge(name, spec.help, spec.labels, registry=None, multiprocess_mode=mode)

        self.info = gauge(names.MODEL_INFO, "livemax")
        self.ready = gauge(names.MODEL_READY, "livemin")
        self.training_data_age = gauge(names.TRAINING_DATA_AGE, "livemax")
        self.drift = gauge(names.FEATURE_DRIFT_PSI, "livemax")

    def publish(self, model: LoadedModel | None, window: DriftWindow | None) -> None:
        self.ready.set(float(model is not None))
        if model is not None:
            self.info.labels(model.name, model.version, model.alias, TEMPLATE_VERSION).set(1.0)
            if model.training_data_epoch is not None:
                self.training_data_age.set(max(0.0, time.time() - model.training_data_epoch))
        if window is not None:
            for feature, value in window.psi().items():
                self.drift.labels(feature).set(value)
