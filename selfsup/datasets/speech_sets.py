"""Standard audio sets in their published layouts, with their download code.

* Speech Commands v2 (Warden 2018): ``ROOT/<word>/<speaker>_nohash_<n>.wav``, with
  ``validation_list.txt`` and ``testing_list.txt`` naming the files of those splits (train is
  everything else); ``_background_noise_`` holds long noise recordings, not a class.
* LibriSpeech (Panayotov et al. 2015): ``ROOT/LibriSpeech/<subset>/<speaker>/<chapter>/
  <speaker>-<chapter>-<utt>.flac``; ``SPEAKERS.TXT`` gives each speaker's sex.
* ESC-50 (Piczak 2015): ``ROOT/ESC-50-master/meta/esc50.csv`` (filename, fold, target,
  category, src_file ...) and the clips under ``audio/``; five folds for cross-validation.

Each loader returns an ``AudioClips`` dataset; ``download=True`` fetches the archive first
(nothing is downloaded otherwise).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from selfsup.datasets.audio_folder import AudioClips, string_ids
from selfsup.datasets.download import fetch_and_extract
from selfsup.errors import DataError

SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
LIBRISPEECH_URL = "https://www.openslr.org/resources/12/{subset}.tar.gz"
ESC50_URL = "https://github.com/karoldvl/ESC-50/archive/master.zip"
SPLITS = ("train", "validation", "test")


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise DataError(f"missing {path.name}; not a Speech Commands v2 folder", path.parent)
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def speech_commands(root: str | Path, split: str = "train", download: bool = False, url: str = SPEECH_COMMANDS_URL,
                    **clip_options) -> AudioClips:
    """One split of Speech Commands v2: 35 words, labels by word, subjects by speaker id."""
    if split not in SPLITS:
        raise DataError(f"unknown Speech Commands split {split!r}; choose from {', '.join(SPLITS)}")
    root = Path(root)
    if download:
        fetch_and_extract(url, root, "validation_list.txt")
    held = {"validation": _read_list(root / "validation_list.txt"), "test": _read_list(root / "testing_list.txt")}
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    files = []
    for word in words:
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            in_split = (rel in held[split]) if split != "train" else not (rel in held["validation"] or rel in held["test"])
            if in_split:
                files.append((wav, word, wav.name.split("_nohash_")[0]))
    if not files:
        raise DataError(f"no clips in the {split} split", root)
    s, speakers = string_ids([spk for _, _, spk in files])
    # class ids over all words of the folder, so that every split numbers classes alike
    index = {w: i for i, w in enumerate(words)}
    y = np.asarray([index[w] for _, w, _ in files])
    return AudioClips([f for f, _, _ in files], y, s, words, source=f"{root} ({split})",
                      info={"subject_names": speakers}, **clip_options)


def _speaker_sex(path: Path) -> dict[str, str]:
    """SPEAKERS.TXT lines 'ID | SEX | SUBSET | MINUTES | NAME' ( ';' starts a comment)."""
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [f.strip() for f in line.split("|")]
        out[fields[0]] = fields[1]
    return out


def librispeech(root: str | Path, subset: str = "dev-clean", label: str = "speaker", download: bool = False,
                url: str = LIBRISPEECH_URL, **clip_options) -> AudioClips:
    """Utterances of one LibriSpeech subset; label by ``speaker`` or ``sex``; subjects are speakers.

    Use ``hop_seconds`` to cut the utterances (up to ~35 s) into windows.
    """
    if label not in ("speaker", "sex"):
        raise DataError(f"LibriSpeech label must be 'speaker' or 'sex', got {label!r}")
    root = Path(root)
    if download:
        fetch_and_extract(url.format(subset=subset), root, f"LibriSpeech/{subset}")
    base = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    folder = base / subset
    if not folder.is_dir():
        raise DataError(f"no LibriSpeech subset {subset!r} (expected {folder})", root)
    files, speakers = [], []
    for spk in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name):
        for chapter in sorted(p for p in spk.iterdir() if p.is_dir()):
            for flac in sorted(chapter.glob("*.flac")):
                if not flac.name.startswith(f"{spk.name}-{chapter.name}-"):
                    raise DataError(f"file name does not follow <speaker>-<chapter>-<utterance>.flac", flac)
                files.append(flac)
                speakers.append(spk.name)
    if not files:
        raise DataError("no .flac utterances in <speaker>/<chapter>/ folders", folder)
    s, speaker_names = string_ids(speakers)
    if label == "speaker":
        y, names = s, speaker_names
    else:
        table = base / "SPEAKERS.TXT"
        if not table.is_file():
            raise DataError("labels by sex need SPEAKERS.TXT", base)
        sex = _speaker_sex(table)
        missing = sorted({spk for spk in speakers if spk not in sex})
        if missing:
            raise DataError(f"speakers {missing[:5]} are not in SPEAKERS.TXT", table)
        y, names = string_ids([sex[spk] for spk in speakers])
    return AudioClips(files, y, s, names, source=f"{folder}", info={"subject_names": speaker_names}, **clip_options)


def esc50(root: str | Path, folds: Sequence[int] | None = None, download: bool = False, url: str = ESC50_URL,
          **clip_options) -> AudioClips:
    """ESC-50 clips of the given folds (default all): 50 classes by ``target``/``category``;
    subjects are the Freesound source clips, so takes of one recording stay together."""
    root = Path(root)
    if download:
        fetch_and_extract(url, root, "ESC-50-master/meta/esc50.csv")
    base = root / "ESC-50-master" if (root / "ESC-50-master").is_dir() else root
    meta = base / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DataError("no meta/esc50.csv; not an ESC-50 folder", root)
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"filename", "fold", "target", "category"}
    if not rows or not need <= set(rows[0]):
        raise DataError(f"esc50.csv needs columns {sorted(need)}", meta)
    if folds is not None:
        rows = [r for r in rows if int(r["fold"]) in set(folds)]
        if not rows:
            raise DataError(f"no clips in folds {list(folds)}", meta)
    names = {int(r["target"]): r["category"] for r in rows}
    class_names = [names.get(i, str(i)) for i in range(max(names) + 1)]
    s, sources = string_ids([r.get("src_file") or r["filename"] for r in rows])
    files = [base / "audio" / r["filename"] for r in rows]
    return AudioClips(files, [int(r["target"]) for r in rows], s, class_names, source=str(meta),
                      info={"subject_names": sources, "folds": [int(r["fold"]) for r in rows]},
                      **{"clip_seconds": 5.0, **clip_options})


__all__ = ["speech_commands", "librispeech", "esc50"]
