"""Bad sensor input: one clear line naming the file and the problem, exit 2, nothing written."""

import re

import h5py
import numpy as np
import pytest

from selfsup.cli import main
from selfsup.datasets.hdf5 import write_hdf5


def _pretrain(data, out, *extra):
    return main(["pretrain", "--modality", "sensor", "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--no-progress", *extra])


def _raw_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value)
    return path


GOOD = np.random.default_rng(0).normal(size=(40, 100, 6)).astype(np.float32)


def _cases(tmp):
    nan = GOOD.copy()
    nan[7, 3, 2] = np.nan
    inf = GOOD.copy()
    inf[2, 0, 0] = np.inf
    (tmp / "notes.txt").write_text("hello")
    (tmp / "garbage.h5").write_bytes(b"\x00" * 100)
    return {
        "missing": (tmp / "nope.h5", "no such file"),
        "not hdf5": (tmp / "garbage.h5", "not a readable HDF5 file"),
        "wrong extension": (tmp / "notes.txt", "must be an HDF5 file"),
        "no x": (_raw_h5(tmp / "nox.h5", data=GOOD), r"has no dataset 'x' \(found: data\)"),
        "wrong rank": (_raw_h5(tmp / "rank.h5", x=GOOD[:, :, 0]), r"'x' must have shape \(N, T, C\), got \(40, 100\)"),
        "nan": (write_hdf5(tmp / "nan.h5", nan), r"contain NaN or inf values \(first: sample 7\)"),
        "inf": (write_hdf5(tmp / "inf.h5", inf), r"NaN or inf values \(first: sample 2\)"),
        "too short": (write_hdf5(tmp / "short.h5", GOOD[:, :20]), "shorter than the encoder's receptive field"),
        "labels length": (_raw_h5(tmp / "labels.h5", x=GOOD, y=np.zeros(39, dtype=np.int64)),
                          r"'y' has shape \(39,\)"),
        "subjects length": (_raw_h5(tmp / "subj.h5", x=GOOD, subject=np.zeros(41, dtype=np.int64)),
                            r"'subject' has shape \(41,\)"),
        "empty": (_raw_h5(tmp / "empty.h5", x=np.zeros((0, 100, 6), np.float32)), "empty"),
        "float labels": (_raw_h5(tmp / "flab.h5", x=GOOD, y=np.full(40, 0.5)), "labels must be integers"),
    }


@pytest.mark.parametrize("case", ["missing", "not hdf5", "wrong extension", "no x", "wrong rank", "nan", "inf",
                                  "too short", "labels length", "subjects length", "empty", "float labels"])
def test_bad_input_is_one_clear_line(tmp_path, capsys, case):
    path, message = _cases(tmp_path)[case]
    out = tmp_path / "run"
    extra = ["--encoder", "tpn", "--objective", "transformation"] if case == "too short" else []  # valid convs
    assert _pretrain(path, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert path.name in err
    assert re.search(message, err), err
    assert not out.exists()                                   # nothing half written


def test_probe_on_unlabelled_data_says_so(tmp_path, capsys):
    path = write_hdf5(tmp_path / "unlabelled.h5", GOOD)
    assert main(["probe", "--random-init", "--modality", "sensor", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unlabelled.h5" in err and "has no labels" in err
