"""Every audio objective learns its pretext task on real speech (espeak-ng voices), trained
through the CLI: the training loss falls, and on held-out clips (the run's validation split)
its own accuracy or error beats the trivial baseline. Then ``selfsup probe`` on folders."""

import json

import pytest
import torch

from selfsup.cli import main
from selfsup.datasets.espeak import DEFAULT_VARIANTS, generate_spoken_words
from selfsup.errors import ConfigError
from selfsup.modalities.audio import AudioModality

from run_logs import assert_cli_learns

WORDS = ["yes", "no", "up", "down"]
# a small CNN on 0.5 s clips keeps each run to seconds on 2 CPU cores
SMALL = ["--set", "modality_options.clip_seconds=0.5", "--set", "encoder_options.widths=[8,16,32]",
         "--set", "encoder_options.embed_dim=64", "--set", "encoder_options.n_mels=32", "--set", "val_fraction=0.25",
         "--batch-size", "32", "--no-progress", "--lr", "3e-3"]
SLICES = ["--set", "objective_options.slice_seconds=0.1"]
# objective -> (epochs, extra options, check of the held-out metrics)
CASES = {
    "audio2vec-cbow": (8, SLICES, lambda m: m["val/relative_mse"] < 0.85 and m["val/pretext_acc"] > 3 / 48),
    "audio2vec-skipgram": (16, ["--set", "objective_options.slice_seconds=0.15", "--set", "objective_options.context=1"],
                           lambda m: m["val/relative_mse"] < 0.9 and m["val/pretext_acc"] > 3 / 48),
    "temporal-gap": (20, SLICES, lambda m: m["val/mae"] < 0.9 * m["val/baseline_mae"] and m["val/pretext_acc"] > 0.6),
    "cpc": (6, ["--set", "objective_options.num_negatives=32"], lambda m: m["val/pretext_acc"] > 4 / 33),
    "simclr": (6, [], lambda m: m["val/pos_acc"] > 5 / 63),
    "autoencoder": (8, SLICES, lambda m: m["val/relative_mse"] < 0.8 and m["val/pretext_acc"] > 3 / 48),
}


@pytest.fixture(scope="module")
def folders():
    """Training voices and held-out voices, two folders of labelled clips (cached on disk)."""
    train = generate_spoken_words(words=WORDS, variants=DEFAULT_VARIANTS[:12], speeds=(140, 180), pitches=(35, 65))
    test = generate_spoken_words(words=WORDS, variants=DEFAULT_VARIANTS[12:15], speeds=(140, 180), pitches=(35, 65))
    return train, test


@pytest.mark.parametrize("objective", list(CASES))
def test_cli_trains_every_objective(objective, folders, tmp_path, capsys):
    """The fast check: one short epoch of each objective through the CLI gives a finite loss."""
    _, extra, _ = CASES[objective]
    run = tmp_path / "run"
    code = main(["pretrain", "--modality", "audio", "--objective", objective, "--data", str(folders[0]),
                 "--out", str(run), "--epochs", "1", "--set", "limit_train_batches=2", *SMALL, *extra])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and torch.isfinite(torch.tensor(metrics["val/loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("objective", list(CASES))
def test_cli_trains_objective_and_it_learns(objective, folders, tmp_path, capsys):
    epochs, extra, learned = CASES[objective]
    run = tmp_path / "run"
    torch.manual_seed(0)
    assert_cli_learns(["pretrain", "--modality", "audio", "--objective", objective, "--data", str(folders[0]),
                       "--out", str(run), "--epochs", str(epochs), *SMALL, *extra], run, epochs, learned, capsys)
    assert (run / "encoder.pt").exists()


def test_probe_on_folders_with_and_without_a_test_folder(folders, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--modality", "audio", "--objective", "simclr", "--data", str(folders[0]),
                 "--out", str(run), "--epochs", "2", *SMALL]) == 0
    capsys.readouterr()
    assert main(["probe", "--run", str(run), "--data", str(folders[0]), "--test", str(folders[1]), "--json",
                 "--seeds", "1", "--no-plots"]) == 0
    held_out_voices = json.loads(capsys.readouterr().out)
    assert held_out_voices["n_test"] == 4 * 3 * 4 and held_out_voices["accuracy"] > 0.5      # chance 0.25
    assert main(["probe", "--run", str(run), "--data", str(folders[0]), "--json", "--seeds", "1",
                 "--labels-per-class", "5"]) == 0
    split_by_voice = json.loads(capsys.readouterr().out)
    assert "by subject" in split_by_voice["split"] and split_by_voice["accuracy"] > 0.4
    assert main(["probe", "--random-init", "--modality", "audio", "--encoder", "log-mel", "--data", str(folders[0]),
                 "--test", str(folders[1]), "--json", "--seeds", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.4


def test_objective_encoder_mismatch_is_a_clear_error(folders, tmp_path, capsys):
    code = main(["pretrain", "--modality", "audio", "--objective", "cpc", "--encoder", "log-mel", "--data",
                 str(folders[0]), "--out", str(tmp_path / "r"), "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "spectrogram-cnn, cpc-wave" in err and "no weights" in err
    m = AudioModality(clip_seconds=0.5)
    data = m.load(folders[0])
    encoder = m.build_encoder("spectrogram-cnn", **m.encoder_kwargs(data))
    with pytest.raises(ConfigError, match="audio2vec-cbow needs 5 slices of 0.2 s but clips are 0.50 s"):
        m.build_objective("audio2vec-cbow", encoder, data)
    with pytest.raises(ConfigError, match="shorter than the encoder's smallest input"):
        m.build_objective("temporal-gap", encoder, data, slice_seconds=0.01)
    with pytest.raises(ConfigError, match="no room for a gap"):
        m.build_objective("temporal-gap", encoder, data, slice_seconds=0.5)
    with pytest.raises(ConfigError, match="speed must keep its factors between 0 and 2: speed x strength = 1.0"):
        m.build_objective("simclr", encoder, data, speed=0.5, strength=2)
    with pytest.raises(ConfigError, match="warp must keep its factors between 0 and 2"):
        m.build_objective("simclr", encoder, data, warp=-0.1)
    assert m.build_objective("simclr", encoder, data, speed=0, warp=0) is not None   # speaker tasks: neither


def test_cpc_learns_with_the_waveform_encoder(folders):
    """CPC on cpc-wave latents (one per 10 ms): InfoNCE accuracy well above chance in a few steps."""
    m = AudioModality(clip_seconds=0.5)
    data = m.load(folders[0])
    torch.manual_seed(0)
    encoder = m.build_encoder("cpc-wave", width=32, context_dim=32, **m.encoder_kwargs(data))
    objective = m.build_objective("cpc", encoder, data, num_negatives=16, steps=2)
    assert objective.uses_encoder_context and not hasattr(objective, "context")  # CPC trains the encoder's own
    params = list(encoder.parameters()) + list(objective.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    x = torch.stack([data[i]["x"] for i in range(0, len(data), 8)])            # 24 clips
    accs = []
    for _ in range(60):
        out = objective({"x": x}, encoder)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        accs.append(float(out.metrics["pretext_acc"]))
    assert sum(accs[-5:]) / 5 > 2 / 17 and sum(accs[-5:]) > 1.5 * sum(accs[:5])   # chance 1/17
    assert encoder.context_network.gru.weight_hh_l0.grad is not None
