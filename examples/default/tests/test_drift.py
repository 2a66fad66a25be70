"""Drift signals measured on real data: the live PSI window on in-distribution traffic (the
golden set replayed) stays well below the alert threshold and still sees a real shift; the
offline report counts out-of-contract rows as drift instead of refusing the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import Settings
from demo_ml_service.data.contract import DataContract
from demo_ml_service.serving.telemetry.drift_window import DRIFT_MIN_SAMPLES, DriftWindow
from demo_ml_service.slo import load_slo
from demo_ml_service.tools.drift_report import drift_report_for_frame

SETTINGS = Settings()
CONTRACT = DataContract.load(SETTINGS.contract_path)
SLO = load_slo(SETTINGS.slo_path)
THRESHOLD = SLO.drift.psi_alert_threshold


def golden_features() -> np.ndarray:
    frame = pd.read_csv(SETTINGS.golden_path)
    return frame[CONTRACT.feature_names].to_numpy(dtype=float)


def replay(window: DriftWindow, rows: np.ndarray, total: int, batch: int = 10) -> float:
    """Send `total` rows of `rows`, in order and repeated, `batch` per request; the worst PSI
    any scrape would have seen."""
    worst = 0.0
    for start in range(0, total, batch):
        window.observe(rows[np.arange(start, start + batch) % len(rows)])
        worst = max([worst, *window.psi().values()])
    return worst


def test_live_psi_of_golden_traffic_stays_well_below_the_threshold(
    champion: LoadedModel,
) -> None:
    assert champion.reference is not None
    golden = golden_features()
    size = SLO.drift.window_size
    window = DriftWindow(champion.reference, size)
    worst = replay(window, golden, 3 * max(size, DRIFT_MIN_SAMPLES))
    # in-distribution: at most half the threshold at every scrape, over three windows' worth
    assert worst < THRESHOLD / 2, f"live PSI {worst:.3f} on golden traffic (threshold {THRESHOLD})"
    # the reference's raw deciles on the same rows are what made the old window noisy
    raw = max(champion.reference.psi(golden).values())
    assert worst < raw


def test_live_psi_still_sees_a_shift_of_one_standard_deviation(
    champion: LoadedModel,
) -> None:
    assert champion.reference is not None
    golden = golden_features()
    shifted = golden.copy()
    shifted[:, 0] += np.nanstd(golden[:, 0])
    window = DriftWindow(champion.reference, SLO.drift.window_size)
    replay(window, shifted, 2 * SLO.drift.window_size)
    psi = window.psi()
    assert psi[CONTRACT.feature_names[0]] > THRESHOLD
    assert sorted(psi, key=psi.__getitem__)[-1] == CONTRACT.feature_names[0]


def test_out_of_contract_rows_are_a_drift_signal_not_a_refusal(
    champion: LoadedModel, tmp_path: Path
) -> None:
    assert champion.reference is not None
    frame = pd.read_csv(SETTINGS.golden_path).drop(columns=[CONTRACT.target])
    bounded = next(f for f in CONTRACT.features if f.max is not None)
    assert bounded.max is not None
    frame.loc[:9, bounded.name] = bounded.max + 1000.0  # ten rows far above the contract
    report = drift_report_for_frame(champion.reference, frame, CONTRACT, THRESHOLD, tmp_path)
    outside = report["out_of_contract"]
    assert outside["rows"] == 10 and outside["by_feature"][bounded.name] == 10
    assert outside["share"] == 10 / len(frame)
    assert report["drift_detected"]
    assert "outside the data contract" in (tmp_path / "drift.md").read_text(encoding="utf-8")
    clean = drift_report_for_frame(
        champion.reference,
        pd.read_csv(SETTINGS.golden_path).drop(columns=[CONTRACT.target]),
        CONTRACT,
        THRESHOLD,
        tmp_path / "clean",
    )
    assert clean["out_of_contract"]["rows"] == 0
