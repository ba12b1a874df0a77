"""Checkpoints, resume, seeds and the run folder."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from selfsup.config import PretrainConfig
from selfsup.errors import ConfigError
from selfsup.training.build import load_encoder
from selfsup.training.checkpoint import loadable_checkpoint
from selfsup.training.module import NonFiniteLossError
from selfsup.training.run import pretrain
from tests.sensor_files import small_watch_h5


def _config(out, data, epochs=2, **kw):
    """The training machinery on the small TPN set-up (fast); the defaults are tested in test_cli."""
    kw = {"encoder": "tpn", "objective": "transformation", **kw}
    return PretrainConfig(modality="sensor", data=str(data), out=str(out), epochs=epochs, batch_size=32,
                          progress=False, **kw)


def _weights(run):
    encoder, _ = load_encoder(run)
    return encoder.state_dict()


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def h5(tmp_path, watch):
    return small_watch_h5(watch, tmp_path / "small.h5", n=120)


def test_run_folder_has_everything(tmp_path, h5):
    result = pretrain(_config(tmp_path / "run", h5, epochs=2))
    run = result.run_dir
    for name in ("config.yaml", "encoder.pt", "metrics.json", "curves.png", "checkpoints/last.ckpt"):
        assert (run / name).exists(), name
    assert PretrainConfig.load(run / "config.yaml") == _config(tmp_path / "run", h5, epochs=2)
    assert list((run / "logs" / "csv").glob("version_*/metrics.csv"))
    assert list((run / "logs" / "tensorboard").glob("version_*/events.*"))
    assert not list(run.rglob("*.tmp"))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, h5):
    a = _weights(pretrain(_config(tmp_path / "a", h5, epochs=1, seed=5)).run_dir)
    b = _weights(pretrain(_config(tmp_path / "b", h5, epochs=1, seed=5)).run_dir)
    c = _weights(pretrain(_config(tmp_path / "c", h5, epochs=1, seed=6)).run_dir)
    assert _same(a, b)
    assert not _same(a, c)


def test_refuses_to_overwrite_a_run_without_resume(tmp_path, h5):
    pretrain(_config(tmp_path / "run", h5, epochs=1))
    with pytest.raises(ConfigError, match="--resume"):
        pretrain(_config(tmp_path / "run", h5, epochs=1))


def test_resume_continues_to_the_same_state(tmp_path, h5):
    straight = _weights(pretrain(_config(tmp_path / "straight", h5, epochs=3)).run_dir)
    # Interrupt after epoch 2 of a 3-epoch run: a callback-free way is a run whose training
    # raises at the start of the last epoch; its finished epochs stay on disk.
    cfg = _config(tmp_path / "resumed", h5, epochs=3)
    from selfsup.training import module as module_mod

    original = module_mod.SelfSupervisedModule.on_train_epoch_start

    def crash_at_epoch_2(self):
        if self.current_epoch == 2:
            raise RuntimeError("simulated crash")
        return original(self)

    module_mod.SelfSupervisedModule.on_train_epoch_start = crash_at_epoch_2
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            pretrain(cfg)
    finally:
        module_mod.SelfSupervisedModule.on_train_epoch_start = original
    assert loadable_checkpoint(cfg.out) is not None
    result = pretrain(cfg, resume=True)
    assert result.metrics["epochs"] == 3 and result.metrics["resumed_from"]
    assert _same(straight, _weights(result.run_dir))


def test_corrupt_last_checkpoint_falls_back_to_the_previous_one(tmp_path, h5):
    run = pretrain(_config(tmp_path / "run", h5, epochs=2)).run_dir
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])          # truncated, as after a crash mid-copy
    with pytest.warns(UserWarning, match="unreadable"):
        chosen = loadable_checkpoint(run)
    assert chosen is not None and chosen.name.startswith("epoch")
    with pytest.warns(UserWarning, match="unreadable"):
        result = pretrain(_config(run, h5, epochs=3), resume=True)
    assert result.metrics["epochs"] == 3


def test_encoder_loads_from_checkpoint_when_training_never_finished(tmp_path, h5):
    run = pretrain(_config(tmp_path / "run", h5, epochs=1)).run_dir
    expected = _weights(run)
    (run / "encoder.pt").unlink()
    assert _same(expected, _weights(run))


def test_nan_loss_stops_with_step_and_source(tmp_path, h5, monkeypatch):
    from selfsup.objectives import transformation

    original = transformation.TransformationPrediction.forward

    def poisoned(self, batch, encoder):
        out = original(self, batch, encoder)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(transformation.TransformationPrediction, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"step 0 .*small\.h5"):
        pretrain(_config(tmp_path / "nan", h5, epochs=1))
    monkeypatch.setattr(transformation.TransformationPrediction, "forward", poisoned)
    with pytest.warns(UserWarning, match="batch skipped"):
        result = pretrain(_config(tmp_path / "skip", h5, epochs=1, on_nonfinite_loss="skip"))
    assert result.metrics["skipped_batches"] > 0


def test_killed_process_resumes_to_the_uninterrupted_result(tmp_path, h5):
    """SIGKILL a real `selfsup pretrain` process mid-run, resume it, compare with a clean run."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "selfsup.cli", "pretrain", "--modality", "sensor", "--data", str(h5),
           "--encoder", "tpn", "--objective", "transformation", "--epochs", "4", "--batch-size", "32", "--no-progress", "--out"]
    subprocess.run(cmd + [str(tmp_path / "clean")], check=True, env=env, capture_output=True)
    victim = subprocess.Popen(cmd + [str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    first = tmp_path / "killed" / "checkpoints" / "epoch001.ckpt"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert loadable_checkpoint(tmp_path / "killed") is not None
    done = subprocess.run(cmd + [str(tmp_path / "killed"), "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _same(_weights(tmp_path / "clean"), _weights(tmp_path / "killed"))
