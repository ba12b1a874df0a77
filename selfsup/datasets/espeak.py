"""Labelled spoken words synthesised offline with Debian's espeak-ng, cached on disk.

espeak-ng is a real formant synthesiser with ~100 voice variants; varying variant, speed and
pitch gives many voices per word, and splitting train/test by variant tests a probe on voices
it has never heard. Pitfalls (see DATA.md): a variant must be a file name under
``espeak-ng-data/voices/!v`` (display names silently fall back to the default voice), and it
must be combined with ``en`` (``en+m3``; ``en-gb+m3`` ignores the variant).

    root/<word>/<variant>_s<speed>_p<pitch>.wav     16-bit mono at ``sample_rate``
    root/metadata.csv                               file,label,subject,word,variant,speed,pitch
    root/manifest.json                              what was asked for (a cache key)
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from selfsup.errors import ConfigError, DataError
from selfsup.io import atomic_path, write_json

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: the auxiliary words of Speech Commands: more classes for a harder probe
AUXILIARY = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
#: varied, clearly different English voices (male, female, character and klatt variants)
DEFAULT_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alicia", "Andy",
                    "Annie", "Denis", "Gene", "Jacky", "Lee", "Mike", "adam", "anika", "aunty", "belinda",
                    "benjamin", "boris", "caleb", "david", "edward", "grandma", "grandpa", "iven", "john",
                    "klatt", "klatt2", "klatt3", "linda", "max", "michel", "norbert", "paul", "quincy",
                    "robert", "steph", "travis", "victor", "zac", "whisperf")


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("espeak-ng is not installed (Debian: apt-get install espeak-ng; scripts/setup.sh does it)")
    return exe


def espeak_data_dir() -> Path:
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Data at:\s*(\S+)", out)
    if m is None:
        raise ConfigError(f"cannot find espeak-ng's data folder in its version line {out.strip()!r}")
    return Path(m.group(1))


def voice_variants() -> list[str]:
    """The variant names espeak-ng really knows (file names under voices/!v)."""
    return sorted(p.name for p in (espeak_data_dir() / "voices" / "!v").iterdir() if p.is_file())


def default_cache() -> Path:
    return Path(os.environ.get("SELFSUP_CACHE", Path.home() / ".cache" / "selfsup")) / "espeak"


def _synthesise(word: str, variant: str, speed: int, pitch: int, sample_rate: int, dest: Path) -> None:
    """One espeak-ng call -> a 16-bit wav at ``sample_rate`` (espeak-ng itself writes 22050 Hz)."""
    import soundfile as sf

    from selfsup.datasets.audio_io import resample

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        done = subprocess.run([espeak_binary(), "-v", f"en+{variant}", "-s", str(speed), "-p", str(pitch),
                               "-w", str(raw), word], capture_output=True, text=True)
        if done.returncode != 0 or not raw.exists():
            raise DataError(f"espeak-ng failed for {word!r} with voice en+{variant}: {done.stderr.strip()}", dest)
        data, rate = sf.read(str(raw), dtype="float32", always_2d=True)
    x = resample(torch.from_numpy(np.ascontiguousarray(data.T)), rate, sample_rate)[0].numpy()
    with atomic_path(dest) as tmp_dest:
        sf.write(str(tmp_dest), x, sample_rate, subtype="PCM_16", format="WAV")


def generate_spoken_words(root: str | Path | None = None, words: Sequence[str] = DIGITS + COMMANDS,
                          variants: Sequence[str] = DEFAULT_VARIANTS[:16], speeds: Sequence[int] = (140, 180),
                          pitches: Sequence[int] = (35, 65), sample_rate: int = 16000, workers: int = 8) -> Path:
    """Synthesise every (word, variant, speed, pitch) once into ``root`` and return ``root``.

    ``root=None`` uses a cache folder keyed by the request (``$SELFSUP_CACHE/espeak/<key>``).
    Files already there are kept, so a second call costs nothing.
    """
    known = set(voice_variants())
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise ConfigError(f"unknown espeak-ng variant(s) {unknown}; variants are file names under "
                          f"{espeak_data_dir() / 'voices' / '!v'}")
    request = {"words": list(words), "variants": list(variants), "speeds": [int(s) for s in speeds],
               "pitches": [int(p) for p in pitches], "sample_rate": int(sample_rate)}
    if root is None:
        key = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
        root = default_cache() / key
    root = Path(root)
    jobs = [(w, v, s, p, root / _safe(w) / f"{v}_s{s}_p{p}.wav")
            for w in words for v in variants for s in request["speeds"] for p in request["pitches"]]
    missing = [j for j in jobs if not j[-1].exists()]
    if missing:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # each call waits on its own espeak-ng process
            list(pool.map(lambda j: _synthesise(*j[:4], sample_rate, j[4]), missing))
    with atomic_path(root / "metadata.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["file", "label", "subject", "word", "variant", "speed", "pitch"])
            for w, v, s, p, dest in jobs:
                out.writerow([dest.relative_to(root).as_posix(), w, v, w, v, s, p])
    write_json(root / "manifest.json", request)
    return root


def _safe(word: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", word.strip()) or "_"


__all__ = ["DIGITS", "COMMANDS", "AUXILIARY", "DEFAULT_VARIANTS", "generate_spoken_words", "voice_variants",
           "espeak_data_dir"]
