"""Stores the report tests read: the default protocol's, and a small study with population lesions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import neurorecord
from tests.conftest import REPO


def study_protocol(folder: Path) -> Path:
    """protocols/functional-populations.yaml reduced to fc3, one clustering, few resamples, 9 controls,
    plus a selectivity analysis: a store with analyses, lesions and a study."""
    protocol = yaml.safe_load((REPO / "protocols" / "functional-populations.yaml").read_text())
    protocol["name"] = "study-small"
    protocol["record"]["regions"] = ["fc3"]
    protocol["lesions"] = [entry for entry in protocol["lesions"] if entry["region"] == "fc3"]
    study = next(entry for entry in protocol["study"] if entry["region"] == "fc3")
    study.update(n_boot=5, n_perm=20, population_lesions={"controls": 9},
                 methods=[{"method": "average", "criterion": "silhouette"}])
    protocol["study"] = [study]
    protocol["analyses"] = [{"name": "csi", "kind": "selectivity", "by": "label", "index": "csi"}]
    path = folder / "study-small.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def digits_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-digits") / "digits"
    neurorecord.run(neurorecord.default_protocol_path(), out, quiet=True)
    return out


@pytest.fixture(scope="session")
def study_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-study")
    out = folder / "study"
    neurorecord.run(study_protocol(folder), out, quiet=True)
    return out
