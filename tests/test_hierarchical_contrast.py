"""Hierarchical contrast: crops, the multi-scale loss, and that the pretext task is learned on
real watch windows (held-out subjects) through the Python API and the CLI, and on real speech
(log-mel frames of espeak-ng voices) through the CLI."""

import json

import numpy as np
import pytest
import torch

from selfsup.cli import main
from selfsup.encoders.base import Encoder
from selfsup.encoders.dilated_conv import DilatedConvEncoder
from selfsup.encoders.temporal_conv import ResNet1dEncoder, TPNEncoder
from selfsup.errors import ConfigError
from selfsup.evaluation.splits import split_dataset
from selfsup.objectives.hierarchical_contrast import (HierarchicalContrast, draw_overlapping_crops,
                                                      hierarchical_contrastive_loss, take_crop)
from selfsup.objectives.losses import nt_xent

from run_logs import epoch_losses

TINY = {"hidden": 32, "depth": 4, "out_dim": 64}


def test_crops_overlap_and_stay_inside():
    torch.manual_seed(0)
    for _ in range(200):
        c = draw_overlapping_crops(5, 50, 2)
        assert 0 <= c.outer_left <= c.left < c.right <= c.outer_right <= 50
        assert c.overlap >= 2
        assert (c.offset + c.outer_left >= 0).all() and (c.offset + c.outer_right <= 50).all()
    with pytest.raises(ConfigError, match="at least 4"):
        draw_overlapping_crops(2, 3, 4)


def test_crop_overlaps_hold_the_same_time_steps():
    """The overlap cut from both encoded crops is the same absolute stretch of each sequence."""
    torch.manual_seed(1)
    x = torch.arange(3 * 40, dtype=torch.float32).reshape(3, 1, 40).repeat(1, 2, 1)   # value = position
    for _ in range(50):
        c = draw_overlapping_crops(3, 40, 2)
        a = take_crop(x, c.offset + c.outer_left, c.right - c.outer_left)
        b = take_crop(x, c.offset + c.left, c.outer_right - c.left)
        torch.testing.assert_close(a[..., c.left - c.outer_left:], b[..., :c.overlap])
        assert a[0, 0, 0].item() == (c.offset[0] + c.outer_left).item()


def test_loss_is_nt_xent_averaged_over_the_pyramid():
    torch.manual_seed(0)
    z1, z2 = torch.randn(4, 5, 8), torch.randn(4, 5, 8)
    loss, metrics = hierarchical_contrastive_loss(z1, z2, alpha=0.5)
    expected, a, b = [], z1, z2
    for length in (5, 2, 1):        # max-pooling by 2: 5 -> 2 -> 1
        assert a.shape[1] == length
        inst = nt_xent(a.transpose(0, 1), b.transpose(0, 1), 1.0, normalize=False)[0]
        temp = nt_xent(a, b, 1.0, normalize=False)[0] if length > 1 else 0.0
        expected.append(0.5 * inst + 0.5 * temp)
        if length > 1:
            a, b = (torch.nn.functional.max_pool1d(z.transpose(1, 2), 2).transpose(1, 2) for z in (a, b))
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    assert metrics["instance_chance"].item() == pytest.approx(1 / 7)
    assert metrics["temporal_chance"].item() == pytest.approx(1 / 9)


def test_identical_distinct_views_are_recognised():
    z = torch.randn(6, 16, 32) * 5             # far-apart random vectors: each view finds its twin
    _, metrics = hierarchical_contrastive_loss(z, z.clone())
    assert metrics["instance_acc"].item() == 1.0 and metrics["temporal_acc"].item() == 1.0
    _, instance_only = hierarchical_contrastive_loss(z, z.clone(), temporal_unit=10)
    assert "temporal_acc" not in instance_only
    _, coarse = hierarchical_contrastive_loss(z, z.clone(), temporal_unit=2)     # scales 16, 8, [4, 2]
    assert coarse["temporal_chance"].item() == pytest.approx(1 / 7)


class PositionEncoder(Encoder):
    """Output step j = the input's first channel at the input step it stands for, so views that
    are aligned hold equal values. ``lost``: steps lost to valid convolutions; ``stride`` > 1:
    one output step per ``stride`` input steps plus a trailing frame, as centred framing gives."""

    output_kind = "sequence"

    def __init__(self, stride: int = 1, lost: int = 0):
        super().__init__()
        self.time_stride, self.lost = stride, lost
        self.min_input_length = lost + 1
        self.embed_dim = self.feature_dim = 1
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        first = x[:, :1]
        if self.time_stride > 1:
            frames = first[..., ::self.time_stride]
            first = torch.cat([frames, frames[..., -1:]], dim=-1)
        else:
            first = first[..., :x.shape[-1] - self.lost]
        return first.transpose(1, 2) * self.scale                      # (B, T', 1)


@pytest.mark.parametrize("stride,lost", [(1, 0), (1, 9), (4, 0)])
def test_views_are_aligned_step_for_step(stride, lost):
    torch.manual_seed(0)
    position = torch.arange(120, dtype=torch.float32) + 1000 * torch.arange(6)[:, None]   # (6, 120)
    x = position[:, None, :].repeat(1, 3, 1)
    encoder = PositionEncoder(stride, lost)
    objective = HierarchicalContrast(encoder, mask_p=0.0)
    for _ in range(30):
        z1, z2 = objective.aligned_views(x, encoder)
        assert z1.shape == z2.shape and z1.shape[1] >= 2
        torch.testing.assert_close(z1, z2)
        assert ((z1[:, 1:] - z1[:, :-1]) == stride).all()             # consecutive steps, no gaps


def test_objective_rejects_encoders_that_lose_the_time_alignment():
    x = {"x": torch.randn(4, 6, 100)}
    torch.manual_seed(0)
    for encoder in (DilatedConvEncoder(6, **TINY), TPNEncoder(6)):   # "same" padding, valid convolutions
        out = HierarchicalContrast(encoder)(x, encoder)
        assert torch.isfinite(out.loss)
        assert {"instance_acc", "temporal_acc", "pretext_acc"} <= set(out.metrics)
    strided = ResNet1dEncoder(6, widths=(8, 8))
    with pytest.raises(ConfigError, match="output steps map to input steps"):
        HierarchicalContrast(strided)(x, strided)


def test_masking_uses_the_input_projection_when_offered():
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(6, **TINY)
    seen = []
    original = encoder.forward
    encoder.forward = lambda x, timestamp_mask=None: seen.append(timestamp_mask) or original(x, timestamp_mask)
    HierarchicalContrast(encoder, mask_p=0.5)({"x": torch.randn(8, 6, 100)}, encoder)
    assert len(seen) == 2 and all(m is not None and m.dtype == torch.bool for m in seen)
    kept = torch.cat([m.flatten() for m in seen]).float().mean().item()
    assert 0.4 < kept < 0.6


def test_max_length_takes_a_window_of_long_sequences():
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(6, **TINY)
    lengths = []
    original = encoder.forward
    encoder.forward = lambda x, timestamp_mask=None: lengths.append(x.shape[-1]) or original(x, timestamp_mask)
    HierarchicalContrast(encoder, max_length=32)({"x": torch.randn(2, 6, 500)}, encoder)
    assert max(lengths) <= 32


def _held_out_metrics(objective, encoder, data, batches=6, batch_size=32):
    """The pretext loss and accuracies on held-out windows, encoder in eval mode, fixed draws."""
    encoder.eval()
    torch.manual_seed(123)
    sums = {}
    with torch.no_grad():
        for i in range(batches):
            out = objective({"x": data.x[i * batch_size:(i + 1) * batch_size]}, encoder)
            for k, v in {"loss": out.loss, **out.metrics}.items():
                sums[k] = sums.get(k, 0.0) + float(v) / batches
    return sums


def test_pretext_task_is_learned_on_held_out_watch_subjects(watch):
    """Loss falls and both contrast accuracies beat chance on windows of subjects never trained on."""
    train, test, _ = split_dataset(watch)
    order = np.random.default_rng(0).permutation(len(test))
    held_out = test.subset(order[:192])
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(6, **TINY)
    objective = HierarchicalContrast(encoder)
    before = _held_out_metrics(objective, encoder, held_out)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    torch.manual_seed(1)
    for step in range(60):
        encoder.train()
        batch = train.x[torch.randint(0, len(train), (16,))]
        loss = objective({"x": batch}, encoder).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = _held_out_metrics(objective, encoder, held_out)
    assert after["loss"] < 0.8 * before["loss"]
    assert after["instance_acc"] > 3 * after["instance_chance"]
    assert after["temporal_acc"] > 2 * after["temporal_chance"]
    assert after["instance_acc"] > before["instance_acc"] and after["temporal_acc"] > before["temporal_acc"]


def test_cli_trains_it_and_probes_it_with_the_svm(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["pretrain", "--modality", "sensor", "--data", "builtin:watch", "--out", str(run),
                 "--encoder", "dilated-conv", "--objective", "hierarchical-contrast", "--epochs", "1",
                 "--batch-size", "16", "--no-progress", "--set", "limit_train_batches=8",
                 "--set", "encoder_options.hidden=16", "--set", "encoder_options.depth=3",
                 "--set", "encoder_options.out_dim=32"])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 8
    assert {"val/instance_acc", "val/temporal_acc", "val/loss"} <= set(metrics)
    assert metrics["val/instance_acc"] > metrics["val/instance_chance"]
    capsys.readouterr()
    code = main(["probe", "--run", str(run), "--data", "builtin:watch", "--protocol", "svm",
                 "--labels-per-class", "10", "--seeds", "2", "--json", "--no-plots"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["protocol"] == "svm" and result["seeds"] == 2 and result["n_labelled"] == [70, 70]
    assert result["macro_f1"] > 0.3                                  # 7 classes: chance is about 0.14


def test_audio_crops_whole_log_mel_frames():
    """On audio the objective crops the clip's log-mel frames, and the CNN gets (B, C, mels, frames)
    crops of the whole clip's log-mel, four frames per output step."""
    from selfsup.modalities.audio import AudioModality

    torch.manual_seed(0)
    modality = AudioModality()
    encoder = modality.build_encoder("spectrogram-cnn", sample_rate=16000, in_channels=1)
    objective = modality.build_objective("hierarchical-contrast", encoder, None, mask_p=0.0)
    x = torch.randn(4, 1, 16000) * 0.1
    whole = encoder.spectrogram(x)                                           # (4, 1, 64, 101)
    seen = []
    original = encoder.forward
    encoder.forward = lambda crop: seen.append(crop) or original(crop)
    out = objective({"x": x}, encoder)
    assert torch.isfinite(out.loss) and {"instance_acc", "temporal_acc"} <= set(out.metrics)
    for crop in seen:
        assert crop.shape[:3] == (4, 1, 64) and crop.shape[-1] % encoder.time_stride == 0
        # each crop is a run of consecutive frames of the whole clip's log-mel
        start = [int((whole[b, 0, 0] == crop[b, 0, 0, 0]).nonzero()[0]) for b in range(4)]
        for b, s in enumerate(start):
            torch.testing.assert_close(crop[b], whole[b, ..., s:s + crop.shape[-1]])
    out.loss.backward()
    assert encoder.blocks[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="spectrogram-cnn"):
        cpc_wave = modality.build_encoder("cpc-wave", sample_rate=16000, in_channels=1)
        modality.build_objective("hierarchical-contrast", cpc_wave, None)


def test_audio_pretext_task_is_learned_through_the_cli(tmp_path):
    """On real speech (espeak-ng voices) the CLI trains it on log-mel frames: the loss falls and
    both contrast accuracies beat chance on the run's held-out clips."""
    
    from selfsup.datasets.espeak import DEFAULT_VARIANTS, generate_spoken_words

    clips = generate_spoken_words(words=["yes", "no", "up", "down"], variants=DEFAULT_VARIANTS[:12],
                                  speeds=(140, 180), pitches=(35, 65))
    run = tmp_path / "run"
    torch.manual_seed(0)
    assert main(["pretrain", "--modality", "audio", "--objective", "hierarchical-contrast", "--data", str(clips),
                 "--out", str(run), "--epochs", "6", "--batch-size", "32", "--lr", "3e-3", "--no-progress",
                 "--set", "modality_options.clip_seconds=0.5", "--set", "encoder_options.widths=[8,16,32]",
                 "--set", "encoder_options.embed_dim=64", "--set", "encoder_options.n_mels=32",
                 "--set", "val_fraction=0.25"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    losses = epoch_losses(run)
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses
    assert metrics["val/instance_acc"] > 2 * metrics["val/instance_chance"]
    assert metrics["val/temporal_acc"] > 2 * metrics["val/temporal_chance"]
