"""Pre-decoded shard stores, and bad samples inside a large dataset (stop by default, or skip and list)."""

import json

import numpy as np
import pytest
import torch

from selfsup.cli import main
from selfsup.config import PretrainConfig
from selfsup.datasets.base import ArrayDataset, collate_samples, read_bad_samples
from selfsup.datasets.shards import ShardDataset, is_shard_store, write_shards
from selfsup.errors import DataError
from selfsup.modalities.sensor import SensorModality
from selfsup.training.run import pretrain


class FlakyWindows(ArrayDataset):
    """Real windows where some samples fail to decode, as corrupt files in a big folder would."""

    bad = {3, 17, 40}

    def load(self, i):
        if int(i) in self.bad:
            raise DataError("truncated file (simulated)", f"/data/clip{int(i):03d}.wav")
        return super().load(i)


def _flaky(watch, n=160):
    sub = watch.subset(np.arange(n))
    return FlakyWindows(sub.x, sub.labels, sub.subjects, sub.class_names, sub.info, source="flaky")


def test_shard_store_round_trip(tmp_path, watch):
    data = watch.subset(np.arange(250))
    store = write_shards(data, tmp_path / "store", "sensor", shard_size=64, progress=False)
    assert is_shard_store(store) and len(list(store.glob("shard-*.h5"))) == 4
    back = ShardDataset(store)
    assert len(back) == 250 and back.class_names == data.class_names
    assert np.array_equal(back.labels, data.labels) and np.array_equal(back.subjects, data.subjects)
    for i in (0, 63, 64, 249):
        assert torch.equal(back[i]["x"], data[i]["x"])
    assert back.info["channel_groups"] == [[0, 1, 2], [3, 4, 5]]
    opened = SensorModality().open(store)
    assert isinstance(opened, ShardDataset)
    with pytest.raises(DataError, match="modality 'sensor', not 'audio'"):
        ShardDataset(store, expect_modality="audio")
    with pytest.raises(DataError, match="already holds"):
        write_shards(data, store, "sensor", progress=False)


def test_shard_store_reads_in_worker_processes(tmp_path, watch):
    data = watch.subset(np.arange(100))
    store = write_shards(data, tmp_path / "store", "sensor", shard_size=30, progress=False)
    loader = torch.utils.data.DataLoader(ShardDataset(store), batch_size=25, num_workers=2)
    got = torch.cat([b["x"] for b in loader])
    assert torch.equal(got, data.x[:100])


def test_cli_cache_then_pretrain_from_the_store(tmp_path, capsys):
    assert main(["cache", "--modality", "sensor", "--data", "builtin:watch", "--out", str(tmp_path / "store"),
                 "--shard-size", "2000"]) == 0
    assert "samples of shape (6, 100)" in capsys.readouterr().out
    assert main(["pretrain", "--modality", "sensor", "--data", str(tmp_path / "store"), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--no-progress", "--set", "limit_train_batches=2"]) == 0


def test_collate_drops_skipped_samples():
    s = {"x": torch.zeros(2), "y": torch.tensor(1)}
    assert collate_samples([None, s, None])["x"].shape == (1, 2)
    assert collate_samples([None, None]) is None


def test_bad_sample_stops_the_run_by_default_naming_the_file(tmp_path, watch):
    cfg = PretrainConfig(modality="sensor", out=str(tmp_path / "run"), epochs=1, batch_size=32, progress=False,
                         val_fraction=0.0)
    with pytest.raises(DataError, match=r"clip0(03|17|40)\.wav: truncated file"):
        pretrain(cfg, dataset=_flaky(watch))


def test_bad_samples_can_be_skipped_and_are_listed(tmp_path, watch):
    cfg = PretrainConfig(modality="sensor", out=str(tmp_path / "run"), epochs=2, batch_size=32, progress=False,
                         bad_samples="skip", val_fraction=0.0)
    with pytest.warns(UserWarning, match="skipped 3 unreadable sample"):
        result = pretrain(cfg, dataset=_flaky(watch))
    listed = read_bad_samples(tmp_path / "run" / "bad_samples.tsv")
    assert [path for _, path, _ in listed] == ["/data/clip003.wav", "/data/clip017.wav", "/data/clip040.wav"]
    assert result.metrics["bad_samples"] == 3
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["bad_samples"] == 3
