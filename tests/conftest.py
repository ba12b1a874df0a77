import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def watch():
    """The built-in seglearn watch windows (real IMU data), loaded once."""
    from selfsup.modalities.sensor import SensorModality

    return SensorModality().load("builtin:watch")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    import warnings

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    yield
