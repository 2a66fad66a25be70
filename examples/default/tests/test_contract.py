from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from demo_ml_service.config import Settings
from demo_ml_service.data.contract import ContractError, ContractViolation, DataContract
from demo_ml_service.data.loaders import data_hash, load_dataset


@pytest.fixture(scope="module")
def contract() -> DataContract:
    return DataContract.load(Settings().contract_path)


def test_shipped_data_satisfies_the_contract(contract: DataContract) -> None:
    settings = Settings()
    train_x, _ = load_dataset(settings.train_path, contract)
    golden_x, _ = load_dataset(settings.golden_path, contract)
    assert train_x.shape[1] == golden_x.shape[1] == len(contract.features)
    assert len(train_x) > len(golden_x) > 0


def test_violations_are_all_listed(contract: DataContract, tmp_path: Path) -> None:
    frame = pd.read_csv(Settings().train_path).head(20)
    first, second = contract.features[0], contract.features[1]
    frame.loc[0, first.name] = (first.max or 0) + 1e6
    frame.loc[1, second.name] = None
    frame = frame.drop(columns=[contract.features[2].name])
    frame["surprise"] = 1.0
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(ContractViolation) as caught:
        load_dataset(bad, contract)
    text = "\n".join(caught.value.problems)
    assert f"missing columns: {contract.features[2].name}" in text
    assert "columns not in the contract: surprise" in text
    assert f"{second.name}: 1 null value(s)" in text
    assert f"{first.name}: 1 value(s) above the maximum" in text


def test_data_hash_changes_with_the_data(tmp_path: Path) -> None:
    source = Settings().train_path
    copy = tmp_path / "train.csv"
    copy.write_bytes(source.read_bytes())
    assert data_hash(copy) == data_hash(source)
    copy.write_bytes(source.read_bytes() + b"\n")
    assert data_hash(copy) != data_hash(source)


# -- the contract file itself: strict keys, category and nullable features, inference -----------
def write_contract(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contract.yaml"
    path.write_text(text, encoding="utf-8")
    return path


FRAUD_CONTRACT = """\
target: is_fraud
target_dtype: int
classes: {0: legit, 1: fraud}
features:
- {name: amount, dtype: float, min: 0, max: 10000, nullable: true}
- {name: country, dtype: category, allowed: [FR, DE, US]}
- {name: channel, dtype: category, allowed: [web, app], nullable: true}
"""


def fraud_frame(rows: int = 60) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.uniform(0, 5000, rows),
            "country": rng.choice(["FR", "DE", "US"], rows),
            "channel": rng.choice(["web", "app"], rows),
        }
    )
    frame.loc[::7, "amount"] = None
    frame.loc[::11, "channel"] = None
    frame["is_fraud"] = ((frame["country"] == "US") & (frame["channel"] == "app")).astype(int)
    return frame


def test_a_misspelled_key_is_an_error_naming_it(tmp_path: Path) -> None:
    text = FRAUD_CONTRACT.replace("max: 10000", "maximum: 10000")
    with pytest.raises(ContractError, match=r"features\[0\] \(amount\): unknown key 'maximum'"):
        DataContract.load(write_contract(tmp_path, text))
    with pytest.raises(ContractError, match="unknown key 'clases'"):
        DataContract.load(write_contract(tmp_path, FRAUD_CONTRACT.replace("classes", "clases")))
    with pytest.raises(ContractError, match="category feature lists its values as strings"):
        numbers = FRAUD_CONTRACT.replace("[FR, DE, US]", "[1, 2]")
        DataContract.load(write_contract(tmp_path, numbers))


def test_load_test_requests_carry_categories_and_nulls(tmp_path: Path) -> None:
    from demo_ml_service.tools.loadtest import golden_payloads

    contract = DataContract.load(write_contract(tmp_path, FRAUD_CONTRACT))
    golden = tmp_path / "golden.csv"
    fraud_frame(8).to_csv(golden, index=False)
    bodies = [json.loads(body) for body in golden_payloads(golden, contract)]
    assert bodies[0] == {"amount": None, "country": bodies[0]["country"], "channel": None}
    assert bodies[0]["country"] in {"FR", "DE", "US"}
    assert isinstance(bodies[1]["amount"], float) and bodies[1]["channel"] in {"web", "app"}


def test_categories_are_encoded_and_unknown_ones_listed_with_rows(tmp_path: Path) -> None:
    contract = DataContract.load(write_contract(tmp_path, FRAUD_CONTRACT))
    frame = fraud_frame()
    contract.validate_frame(frame, "fraud")
    encoded = contract.encode(frame)
    assert encoded.shape == (len(frame), 3)
    assert set(encoded[:, 1]) == {0.0, 1.0, 2.0}
    frame.loc[[3, 9], "country"] = "XX"
    frame.loc[4, "amount"] = -5.0
    with pytest.raises(ContractViolation) as caught:
        contract.validate_frame(frame, "fraud")
    text = "\n".join(caught.value.problems)
    assert "country: 2 value(s) not in the allowed categories ['FR', 'DE', 'US']" in text
    assert "(rows 4, 10)" in text  # 1-based data rows
    assert "amount: 1 value(s) below the minimum 0.0 (row 5)" in text
    assert contract.encode(frame)[3, 1] == -1.0


def test_row_numbers_are_capped(tmp_path: Path) -> None:
    contract = DataContract.load(write_contract(tmp_path, FRAUD_CONTRACT))
    frame = fraud_frame()
    frame["country"] = None
    with pytest.raises(ContractViolation, match=r"\(rows 1, 2, 3, 4, 5, \.\.\.\)"):
        contract.validate_frame(frame, "fraud")


def test_every_failing_file_is_reported(tmp_path: Path) -> None:
    from demo_ml_service.data.snapshots import ingest

    contract = DataContract.load(write_contract(tmp_path, FRAUD_CONTRACT))
    bad_train, bad_golden = fraud_frame(), fraud_frame(20)
    bad_train.loc[2, "country"] = "ZZ"
    bad_golden.loc[0, "amount"] = 1e9
    bad_train.to_csv(tmp_path / "train.csv", index=False)
    bad_golden.to_parquet(tmp_path / "golden.parquet")
    sources = tmp_path / "sources.yaml"
    sources.write_text("training: {path: train.csv}\ngolden: {path: golden.parquet}\n")
    with pytest.raises(ContractViolation) as caught:
        ingest(sources, contract, tmp_path / "snapshots")
    text = "\n".join(caught.value.problems)
    assert "training (" in text and "(row 3)" in text
    assert "golden (" in text and "above the maximum 10000.0 (row 1)" in text
    assert not (tmp_path / "snapshots").exists()


def test_snapshots_are_content_addressed_and_immutable(tmp_path: Path) -> None:
    from demo_ml_service.data.snapshots import current, ingest

    contract = DataContract.load(write_contract(tmp_path, FRAUD_CONTRACT))
    fraud_frame().to_csv(tmp_path / "train.csv", index=False)
    fraud_frame(20).to_parquet(tmp_path / "golden.parquet")
    sources = tmp_path / "sources.yaml"
    sources.write_text("training: {path: train.csv}\ngolden: {path: golden.parquet}\n")
    first = ingest(sources, contract, tmp_path / "snapshots")
    again = ingest(sources, contract, tmp_path / "snapshots")
    assert first["training"].sha256 == again["training"].sha256
    snapshot = current(tmp_path / "snapshots", "training")
    assert snapshot is not None and snapshot.rows == 60
    path = snapshot.path(tmp_path / "snapshots")
    assert path.name.startswith("training-") and not path.stat().st_mode & 0o222
    assert pd.read_parquet(path).shape == (60, 4)


def test_contract_infer_bootstraps_a_loadable_contract(tmp_path: Path) -> None:
    import yaml

    from demo_ml_service import cli

    frame = fraud_frame()
    frame.to_parquet(tmp_path / "fraud.parquet")
    out = tmp_path / "inferred.yaml"
    args = ["contract", "infer", str(tmp_path / "fraud.parquet"), "--target", "is_fraud"]
    assert cli.main([*args, "--out", str(out)]) == 0
    inferred = DataContract.load(out)
    by_name = {f.name: f for f in inferred.features}
    assert by_name["country"].categories == ("DE", "FR", "US")
    assert by_name["amount"].nullable and by_name["channel"].nullable
    assert (by_name["amount"].min or 0) <= frame["amount"].min()
    assert (by_name["amount"].max or 0) >= frame["amount"].max()
    inferred.validate_frame(frame, "the file it was inferred from")
    assert yaml.safe_load(out.read_text())["classes"] == {0: "class_0", 1: "class_1"}
