"""Random and truncated bytes into every decoder: a clear DataError naming the file (or a
successful decode, when the damage left a valid file), never another exception, a crash or a
hang. Each decoder runs in a child process so that a codec crash fails the test instead of
killing pytest."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


def _seed_files(folder: Path, decoder: str) -> list[Path]:
    """Valid files of each format the decoder reads."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    if decoder == "audio":
        import soundfile as sf

        from selfsup.datasets.video_io import write_video

        wave = (0.3 * np.sin(np.linspace(0, 400 * np.pi, 8000))).astype(np.float32)
        sf.write(folder / "seed.wav", wave, 16000)
        sf.write(folder / "seed.flac", wave, 16000)
        sf.write(folder / "seed.ogg", wave, 16000)
        write_video(folder / "seed.mp4", np.zeros((4, 16, 16, 3), np.uint8), 4, audio=wave)
        return sorted(folder.iterdir())
    if decoder == "image":
        from PIL import Image

        img = Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
        img.save(folder / "seed.png")
        img.save(folder / "seed.jpg")
        return sorted(folder.iterdir())
    if decoder == "hdf5":
        from selfsup.datasets.hdf5 import write_hdf5

        return [write_hdf5(folder / "seed.h5", rng.normal(size=(8, 32, 3)), np.arange(8) % 2)]
    from selfsup.datasets.video_io import write_video

    frames = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    return [write_video(folder / f"seed{ext}", frames, 12) for ext in (".mp4", ".webm", ".avi")]


def _damaged(seed: Path, out: Path, rng) -> None:
    data = seed.read_bytes()
    stem, ext = seed.stem, seed.suffix
    (out / f"{stem}-empty{ext}").write_bytes(b"")
    (out / f"{stem}-random{ext}").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (out / f"{stem}-header{ext}").write_bytes(data[:64])
    for i, frac in enumerate((0.1, 0.3, 0.5, 0.8, 0.97)):
        (out / f"{stem}-cut{i}{ext}").write_bytes(data[: int(len(data) * frac)])
    for i in range(6):
        flipped = bytearray(data)
        where = rng.integers(0, len(data), size=max(1, len(data) // 200))
        for w in where:
            flipped[w] = int(rng.integers(0, 256))
        (out / f"{stem}-flip{i}{ext}").write_bytes(bytes(flipped))


@pytest.mark.parametrize("decoder", ["audio", "image", "hdf5", "video"])
def test_damaged_files_give_clear_errors(tmp_path, decoder):
    seeds = _seed_files(tmp_path / "seeds", decoder)
    cases = tmp_path / "cases"
    cases.mkdir()
    rng = np.random.default_rng(1)
    for seed in seeds:
        _damaged(seed, cases, rng)
    results = tmp_path / "results.jsonl"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "fuzz_runner.py"), decoder, str(cases), str(results)],
                          env=env, capture_output=True, text=True, timeout=600)
    current = Path(str(results) + ".current")
    assert proc.returncode == 0, f"decoder crashed on {current.read_text() if current.exists() else '?'}: " \
                                 f"{proc.stderr[-2000:]}"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == len(list(cases.iterdir())) >= 14 * len(seeds)
    bad = [r for r in rows if r["outcome"] not in ("ok", "data_error")]
    assert not bad, bad
    for r in rows:
        if r["outcome"] == "data_error":
            assert r["file"] in r["message"], r
    errors = sum(r["outcome"] == "data_error" for r in rows)
    empties = [r for r in rows if "-empty" in r["file"] or "-random" in r["file"] or "-header" in r["file"]]
    assert all(r["outcome"] == "data_error" for r in empties), empties
    assert errors >= len(rows) // 3
