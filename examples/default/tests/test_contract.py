from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demo_ml_service.config import Settings
from demo_ml_service.data.contract import ContractViolation, DataContract
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
