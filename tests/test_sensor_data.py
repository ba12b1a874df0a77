"""HDF5 windows, long recordings, CSV conversion and the standard HAR layouts (small files)."""

import zipfile

import numpy as np
import pytest

from selfsup.datasets import har
from selfsup.datasets.download import download, extract, fetch_and_extract, sha256sum
from selfsup.datasets.hdf5 import read_hdf5, write_hdf5
from selfsup.datasets.windows import majority_labels, sliding_windows, window_recordings
from selfsup.errors import DataError
from selfsup.modalities.sensor import SensorModality, infer_channel_groups


def test_sliding_windows_and_majority_labels():
    x = np.arange(10, dtype=np.float32)[:, None].repeat(2, 1)   # (T=10, C=2)
    w = sliding_windows(x, 4, 3)
    assert w.shape == (3, 4, 2)
    assert w[1, :, 0].tolist() == [3, 4, 5, 6]
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    assert majority_labels(labels, 4, 3).tolist() == [0, 1, 2]


def test_window_recordings_never_crosses_recordings():
    recs = [np.zeros((7, 3)), np.ones((5, 3))]
    x, y, s, r = window_recordings(recs, 5, 2, labels=[3, 4], subjects=[10, 11])
    assert x.shape == (3, 5, 3)
    assert y.tolist() == [3, 3, 4] and s.tolist() == [10, 10, 11] and r.tolist() == [0, 0, 1]
    assert x[2].min() == 1 and x[:2].max() == 0


def test_hdf5_round_trip_and_sensor_layout(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 64, 6)).astype(np.float32)
    path = write_hdf5(tmp_path / "w.h5", x, np.arange(20) % 3, np.arange(20) // 10, 50.0,
                      ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"], ["a", "b", "c"])
    d = read_hdf5(path)
    assert np.array_equal(d["x"], x) and d["sample_rate"] == 50.0 and d["class_names"] == ["a", "b", "c"]
    ds = SensorModality().load(path)
    assert ds[0]["x"].shape == (6, 64)                          # (C, T) per sample
    assert np.allclose(ds[3]["x"].numpy(), x[3].T)
    assert ds.info["channel_groups"] == [[0, 1, 2], [3, 4, 5]]
    assert ds.subjects.tolist() == [0] * 10 + [1] * 10


def test_long_recordings_are_cut_with_window_and_step(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 500, 3)).astype(np.float32)
    y = np.zeros((2, 500), dtype=np.int64)
    y[:, 250:] = 1                                               # a label per time step
    path = write_hdf5(tmp_path / "long.h5", x, y, np.array([7, 8]))
    ds = SensorModality(window=100, step=50).load(path)
    assert len(ds) == 2 * 9
    assert ds[0]["x"].shape == (3, 100)
    assert ds.labels[:9].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]  # window 200-299 is a 50/50 tie: smallest wins
    assert ds.subjects.tolist() == [7] * 9 + [8] * 9
    with pytest.raises(DataError, match="per time step"):
        SensorModality().load(path)


def test_channel_groups_come_from_names_only():
    assert infer_channel_groups(["ax", "ay", "az", "wx", "wy", "wz"], 6) == [[0, 1, 2], [3, 4, 5]]
    assert infer_channel_groups(["acc.x", "acc.y", "acc.z", "hr"], 4) == [[0, 1, 2]]
    assert infer_channel_groups(None, 6) is None
    assert infer_channel_groups(["a", "b", "c"], 3) is None


def _write_uci_har(root, n=6, t=128):
    rng = np.random.default_rng(0)
    base = root / har.UCI_HAR_DIR
    for split in ("train", "test"):
        sig = base / split / "Inertial Signals"
        sig.mkdir(parents=True)
        for names in har.UCI_HAR_SIGNALS.values():
            for name in names:
                np.savetxt(sig / f"{name}_{split}.txt", rng.normal(size=(n, t)), fmt="%.6e")
        np.savetxt(base / split / f"y_{split}.txt", (np.arange(n) % 6) + 1, fmt="%d")
        np.savetxt(base / split / f"subject_{split}.txt", np.arange(n) // 2 + 1, fmt="%d")
    (base / "activity_labels.txt").write_text("1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n"
                                              "4 SITTING\n5 STANDING\n6 LAYING\n")
    return base


def test_uci_har_layout(tmp_path):
    _write_uci_har(tmp_path)
    d = har.load_uci_har(tmp_path, "test")
    assert d["x"].shape == (6, 128, 6)
    assert d["y"].tolist() == [0, 1, 2, 3, 4, 5] and d["subject"].tolist() == [1, 1, 2, 2, 3, 3]
    assert d["class_names"][0] == "WALKING" and d["channel_names"][:3] == ["total_acc_x", "total_acc_y", "total_acc_z"]
    raw = np.loadtxt(tmp_path / har.UCI_HAR_DIR / "test" / "Inertial Signals" / "body_gyro_y_test.txt")
    assert np.allclose(d["x"][:, :, 4], raw, atol=1e-5)
    nine = har.load_uci_har(tmp_path, "train", signals=("total_acc", "body_acc", "body_gyro"))
    assert nine["x"].shape[-1] == 9 and nine["channel_groups"] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_uci_har_download_from_a_url(tmp_path):
    src = tmp_path / "src"
    _write_uci_har(src)
    archive = tmp_path / "UCI HAR Dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in (src / har.UCI_HAR_DIR).rglob("*"):
            zf.write(p, p.relative_to(src))
    url = archive.as_uri()
    root = tmp_path / "root"
    marker = fetch_and_extract(url, root, har.UCI_HAR_DIR, sha256=sha256sum(archive))
    assert marker.is_dir()
    assert har.load_uci_har(root, "train")["x"].shape == (6, 128, 6)


def test_download_checks_the_checksum_and_reports_failures(tmp_path):
    f = tmp_path / "data.bin"
    f.write_bytes(b"hello")
    with pytest.raises(DataError, match="checksum"):
        download(f.as_uri(), tmp_path / "out.bin", sha256="0" * 64)
    assert not (tmp_path / "out.bin").exists()
    with pytest.raises(DataError, match="download of"):
        download((tmp_path / "missing.zip").as_uri(), tmp_path / "x.zip")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError):
        extract(bad, tmp_path / "x")


def test_zip_members_may_not_escape(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match="outside"):
        extract(archive, tmp_path / "into")


def test_motionsense_layout(tmp_path):
    base = tmp_path / har.MOTIONSENSE_DIR
    header = ",attitude.roll,attitude.pitch,attitude.yaw,gravity.x,gravity.y,gravity.z,rotationRate.x," \
             "rotationRate.y,rotationRate.z,userAcceleration.x,userAcceleration.y,userAcceleration.z"
    rng = np.random.default_rng(0)
    for folder, subjects in (("wlk_7", [1, 2]), ("jog_9", [1])):
        (base / folder).mkdir(parents=True)
        for s in subjects:
            rows = rng.normal(size=(300, 12))
            text = header + "\n" + "\n".join(f"{i}," + ",".join(f"{v:.5f}" for v in r) for i, r in enumerate(rows))
            (base / folder / f"sub_{s}.csv").write_text(text)
    d = har.load_motionsense(tmp_path, window=128, step=64)
    assert d["x"].shape == (3 * 3, 128, 6)
    assert sorted(set(d["y"].tolist())) == [har.MOTIONSENSE_ACTIVITIES.index("wlk"), har.MOTIONSENSE_ACTIVITIES.index("jog")]
    assert sorted(set(d["subject"].tolist())) == [1, 2]


def test_csv_conversion_groups_by_subject_and_takes_majority_labels(tmp_path):
    lines = ["t,ax,ay,az,activity,user"]
    for user in ("u1", "u2"):
        for i in range(100):
            lines.append(f"{i},{i},{-i},{0.5},{'walk' if i < 60 else 'run'},{user}")
    path = tmp_path / "rec.csv"
    path.write_text("\n".join(lines))
    d = har.csv_to_windows(path, ["ax", "ay", "az"], window=40, step=20, label_column="activity",
                           subject_column="user", sample_rate=50)
    assert d["x"].shape == (2 * 4, 40, 3)
    assert d["class_names"] == ["run", "walk"]
    assert d["y"].tolist() == [1, 1, 0, 0] * 2                # 40-79 is a tie (smallest id, run); 60-99 all run
    assert d["subject"].tolist() == [0] * 4 + [1] * 4
    assert d["x"][1, 0, 0] == 20 and d["x"][4, 0, 0] == 0     # second subject starts afresh


def test_csv_errors_name_the_file_and_problem(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ax,ay\n1,2\n3,oops\n")
    with pytest.raises(DataError, match="bad.csv.*not a number"):
        har.csv_to_windows(path, ["ax", "ay"], window=1, step=1)
    with pytest.raises(DataError, match=r"no column\(s\) \['az'\]"):
        har.csv_to_windows(path, ["ax", "az"], window=1, step=1)
    path.write_text("ax,ay\n1,2,3\n")
    with pytest.raises(DataError, match="line 2 has 3 fields"):
        har.csv_to_windows(path, ["ax", "ay"], window=1, step=1)
    with pytest.raises(DataError, match="no such file"):
        har.csv_to_windows(tmp_path / "none.csv", ["ax"], window=1, step=1)


def test_builtin_watch_windows(watch):
    assert watch[0]["x"].shape == (6, 100)
    assert len(watch) > 4000 and watch.num_classes == 7
    assert sorted(set(watch.subjects.tolist())) == list(range(1, 11))


