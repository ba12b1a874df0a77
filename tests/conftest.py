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


@pytest.fixture(autouse=True)
def _torch_threads():
    """Tests run small batches, where one thread is as fast as two on an idle 2-core machine
    and far faster on a busy one (OpenMP threads spin against other processes).
    SELFSUP_TEST_THREADS overrides."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SELFSUP_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)
