"""The sensor objectives learn their pretext tasks on real IMU windows (seglearn watch)."""

import numpy as np
import pytest
import torch

from selfsup.config import PretrainConfig
from selfsup.modalities.sensor import SensorModality
from selfsup.objectives.multitask import MultiTask
from selfsup.training.run import pretrain


def _subset(watch, n, seed=0):
    return watch.subset(np.sort(np.random.default_rng(seed).choice(len(watch), n, replace=False)))


def _run(tmp_path, data, objective, epochs, encoder="tpn", **kw):
    cfg = PretrainConfig(modality="sensor", out=str(tmp_path / objective.replace(":", "_").replace(",", "+")),
                         encoder=encoder, objective=objective, epochs=epochs, batch_size=64, progress=False,
                         val_fraction=0.25, **kw)
    return pretrain(cfg, dataset=data)


def test_tpn_binary_heads_learn_on_real_windows(tmp_path, watch):
    result = _run(tmp_path, _subset(watch, 1200), "transformation", epochs=3, lr=2e-3)
    m = result.metrics
    assert m["val/pretext_acc"] > 0.65                   # mean of 8 binary heads; chance 0.5
    for easy in ("negation", "time_flip", "channel_shuffle", "rotation"):
        assert m[f"val/acc_{easy}"] > 0.75, easy
    assert m["train/loss_epoch"] < np.log(2)             # below the loss of a constant 50/50 guess


def test_tpn_multiclass_form_beats_chance(tmp_path, watch):
    # One random transformation per window: 9x cheaper per epoch than the binary form.
    result = _run(tmp_path, _subset(watch, 1200), "transformation", epochs=12, lr=2e-3,
                  objective_options={"form": "multiclass", "assignment": "random"})
    assert result.metrics["val/pretext_acc"] > 2 / 9     # 9 classes (identity + 8): chance 0.11


def test_sensor_simclr_positive_pair_accuracy_beats_chance(tmp_path, watch):
    result = _run(tmp_path, _subset(watch, 1200), "simclr", epochs=3)
    # chance of picking the positive among 2 * batch - 1 candidates is ~1/127
    assert result.metrics["val/pos_acc"] > 0.3


def test_sensor_cpc_learns_to_predict_future_steps(tmp_path, watch):
    result = _run(tmp_path, _subset(watch, 1200), "cpc", epochs=3, objective_options={"num_negatives": 32})
    assert result.metrics["val/pretext_acc"] > 0.2       # 1 positive among 33 candidates: chance 0.03


def test_multitask_sum_reports_each_part(tmp_path, watch):
    result = _run(tmp_path, _subset(watch, 600), "transformation:1,simclr:0.5", epochs=1)
    keys = set(result.metrics)
    assert {"train/transformation/pretext_acc", "train/simclr/pos_acc", "train/loss_epoch"} <= keys


def test_multitask_loss_is_the_weighted_sum(watch):
    torch.manual_seed(0)
    modality = SensorModality()
    encoder = modality.build_encoder("tpn", in_channels=6).eval()
    parts = {"a": modality.build_objective("cpc", encoder, watch), "b": modality.build_objective("cpc", encoder, watch)}
    batch = {"x": watch.x[:32]}
    torch.manual_seed(1)
    single_a = parts["a"](batch, encoder).loss
    single_b = parts["b"](batch, encoder).loss
    torch.manual_seed(1)
    total = MultiTask(parts, {"a": 2.0, "b": 0.5})(batch, encoder).loss
    assert total.item() == pytest.approx(2.0 * single_a.item() + 0.5 * single_b.item(), rel=1e-5)
