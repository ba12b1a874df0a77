"""Audio folders (labels from subfolders at any depth, CSV metadata), the standard sets' parsers
and download code (on small trees written here), and the espeak-ng spoken-word generator."""

import csv
import tarfile
import zipfile

import numpy as np
import pytest
import soundfile as sf

from selfsup.datasets import speech_sets
from selfsup.datasets.audio_folder import audio_folder
from selfsup.datasets.espeak import generate_spoken_words, voice_variants
from selfsup.errors import ConfigError, DataError
from selfsup.modalities.audio import AudioModality

RATE = 16000


def write_clip(path, seconds=0.3, rate=RATE, freq=300.0, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(scale=0.01, size=len(t))
    sf.write(path, (0.2 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), rate)
    return path


def test_class_subfolders_at_any_depth_and_unlabelled_top_level(tmp_path):
    write_clip(tmp_path / "dog" / "a.wav")
    write_clip(tmp_path / "dog" / "deep" / "er" / "b.flac")
    write_clip(tmp_path / "cat" / "c.ogg")
    write_clip(tmp_path / "loose.wav")
    write_clip(tmp_path / ".hidden" / "skip.wav")
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    d = AudioModality(clip_seconds=0.5).load(tmp_path)
    assert d.class_names == ["cat", "dog"]
    by_file = {d.file(i).name: int(d.labels[i]) for i in range(len(d))}
    assert by_file == {"c.ogg": 0, "a.wav": 1, "b.flac": 1, "loose.wav": -1}
    assert d[0]["x"].shape == (1, RATE // 2)               # 0.3 s zero-padded to 0.5 s


def test_metadata_csv_gives_labels_and_subjects(tmp_path):
    for i in range(4):
        write_clip(tmp_path / "clips" / f"{i}.wav", seed=i)
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "subject", "extra"])
        w.writerows([["clips/0.wav", "yes", "ann", 1], ["clips/1.wav", "no", "bob", 2],
                     ["clips/2.wav", "yes", "bob", 3]])
    d = audio_folder(tmp_path, clip_seconds=0.3)
    labels = {d.file(i).name: (int(d.labels[i]), int(d.subjects[i])) for i in range(len(d))}
    assert d.class_names == ["clips", "no", "yes"]           # 3.wav keeps its folder label
    assert labels == {"0.wav": (2, 0), "1.wav": (1, 1), "2.wav": (2, 1), "3.wav": (0, -1)}
    assert d.info["subject_names"] == ["ann", "bob"]


def test_metadata_csv_naming_a_missing_file(tmp_path):
    write_clip(tmp_path / "a.wav")
    (tmp_path / "metadata.csv").write_text("file,label\nmissing.wav,x\n")
    with pytest.raises(DataError, match=r"metadata.csv.*line 2.*missing.wav"):
        audio_folder(tmp_path)
    (tmp_path / "metadata.csv").write_text("name,label\na.wav,x\n")
    with pytest.raises(DataError, match="column naming the files"):
        audio_folder(tmp_path)


def make_speech_commands(root):
    words = {"yes": ["aa11_nohash_0", "bb22_nohash_0", "cc33_nohash_1"], "no": ["aa11_nohash_1", "dd44_nohash_0"]}
    for word, names in words.items():
        for k, name in enumerate(names):
            write_clip(root / word / f"{name}.wav", seconds=1.0, seed=k)
    write_clip(root / "_background_noise_" / "white_noise.wav", seconds=2.0)
    (root / "validation_list.txt").write_text("yes/bb22_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/cc33_nohash_1.wav\nno/dd44_nohash_0.wav\n")
    (root / "LICENSE").write_text("CC-BY-4.0")


def test_speech_commands_splits(tmp_path):
    make_speech_commands(tmp_path)
    train = speech_sets.speech_commands(tmp_path, "train")
    val = speech_sets.speech_commands(tmp_path, "validation")
    test = speech_sets.speech_commands(tmp_path, "test")
    assert (len(train), len(val), len(test)) == (2, 1, 2)
    assert train.class_names == val.class_names == ["no", "yes"]     # no _background_noise_ class
    assert sorted(test.file(i).name for i in range(2)) == ["cc33_nohash_1.wav", "dd44_nohash_0.wav"]
    assert sorted(test.labels.tolist()) == [0, 1]
    assert sorted(train.info["subject_names"]) == ["aa11"]           # speaker id from the file name
    via_modality = AudioModality().load(f"speech-commands:{tmp_path}?split=test")
    assert len(via_modality) == 2
    with pytest.raises(DataError, match="unknown Speech Commands split"):
        speech_sets.speech_commands(tmp_path, "dev")


def tar_folder(folder, archive):
    """Pack the entries of ``folder`` (not the folder itself) into a .tar.gz."""
    with tarfile.open(archive, "w:gz") as tar:
        for p in folder.iterdir():
            tar.add(p, arcname=p.name)
    return archive


def test_speech_commands_download_from_a_file_url(tmp_path):
    make_speech_commands(tmp_path / "tree")
    archive = tar_folder(tmp_path / "tree", tmp_path / "speech_commands_v0.02.tar.gz")
    root = tmp_path / "data"
    d = speech_sets.speech_commands(root, "train", download=True, url=archive.as_uri())
    assert len(d) == 2 and (root / "validation_list.txt").exists()
    # a second call finds the data and downloads nothing
    archive.unlink()
    assert len(speech_sets.speech_commands(root, "test", download=True, url=archive.as_uri())) == 2


def make_librispeech(root):
    for spk, chapters in {"19": ["198", "227"], "26": ["495"]}.items():
        for ch in chapters:
            for utt in range(2):
                write_clip(root / "LibriSpeech" / "dev-clean" / spk / ch / f"{spk}-{ch}-{utt:04d}.flac",
                           seconds=1.5, seed=utt)
            (root / "LibriSpeech" / "dev-clean" / spk / ch / f"{spk}-{ch}.trans.txt").write_text("X HELLO\n")
    (root / "LibriSpeech" / "SPEAKERS.TXT").write_text(
        "; ID  |SEX| SUBSET   |MINUTES| NAME\n19   | F | dev-clean | 25.19 | Kara\n26   | M | dev-clean | 25.08 | Den\n")


def test_librispeech_speakers_chapters_and_windows(tmp_path):
    make_librispeech(tmp_path)
    d = speech_sets.librispeech(tmp_path, "dev-clean")
    assert len(d) == 6 and d.class_names == ["19", "26"] and d.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert (d.subjects == d.labels).all()
    sex = speech_sets.librispeech(tmp_path, "dev-clean", label="sex")
    assert sex.class_names == ["F", "M"] and sex.labels.tolist() == [0, 0, 0, 0, 1, 1]
    windows = AudioModality(clip_seconds=0.5, hop_seconds=0.5).load(f"librispeech:{tmp_path}?subset=dev-clean")
    assert len(windows) == 6 * 3
    with pytest.raises(DataError, match="no LibriSpeech subset 'test-other'"):
        speech_sets.librispeech(tmp_path, "test-other")


def test_librispeech_download_from_a_file_url(tmp_path):
    make_librispeech(tmp_path / "tree")
    tar_folder(tmp_path / "tree", tmp_path / "dev-clean.tar.gz")
    url = (tmp_path / "{subset}.tar.gz").as_uri().replace("%7B", "{").replace("%7D", "}")
    d = speech_sets.librispeech(tmp_path / "data", "dev-clean", download=True, url=url)
    assert len(d) == 6


def make_esc50(root):
    base = root / "ESC-50-master"
    rows = [("1-100-A-0.wav", 1, 0, "dog", "100"), ("1-100-B-0.wav", 1, 0, "dog", "100"),
            ("2-200-A-1.wav", 2, 1, "rooster", "200"), ("3-300-A-0.wav", 3, 0, "dog", "300")]
    for name, *_ in rows:
        write_clip(base / "audio" / name, seconds=5.0, rate=44100)
    (base / "meta").mkdir(parents=True)
    with open(base / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for name, fold, target, cat, src in rows:
            w.writerow([name, fold, target, cat, "True", src, "A"])


def test_esc50_folds_and_sources(tmp_path):
    make_esc50(tmp_path)
    d = speech_sets.esc50(tmp_path, sample_rate=RATE)
    assert len(d) == 4 and d.class_names == ["dog", "rooster"] and d.labels.tolist() == [0, 0, 1, 0]
    assert d.subjects.tolist() == [0, 0, 1, 2]                       # takes of one source together
    assert d[0]["x"].shape == (1, 5 * RATE)
    two = AudioModality().load(f"esc50:{tmp_path}?folds=1,2")
    assert len(two) == 3 and two[0]["x"].shape == (1, RATE)        # the modality's clip length wins


def test_esc50_download_from_a_file_url(tmp_path):
    tree = tmp_path / "tree"
    make_esc50(tree)
    archive = tmp_path / "master.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in (tree / "ESC-50-master").rglob("*"):
            z.write(p, p.relative_to(tree).as_posix())
    d = speech_sets.esc50(tmp_path / "data", folds=[3], download=True, url=archive.as_uri())
    assert len(d) == 1


def test_espeak_words_are_cached_and_labelled(tmp_path):
    root = generate_spoken_words(tmp_path / "words", words=["yes", "seven"], variants=["m3", "f2"], speeds=(150,),
                                 pitches=(40, 70))
    files = sorted(root.rglob("*.wav"))
    assert len(files) == 8
    info = sf.info(str(files[0]))
    assert info.samplerate == RATE and info.frames > 0.2 * RATE
    stamp = {p: p.stat().st_mtime_ns for p in files}
    generate_spoken_words(tmp_path / "words", words=["yes", "seven"], variants=["m3", "f2"], speeds=(150,),
                          pitches=(40, 70))
    assert {p: p.stat().st_mtime_ns for p in files} == stamp         # cached: nothing synthesised again
    d = AudioModality().load(root)
    assert d.class_names == ["seven", "yes"] and d.info["subject_names"] == ["f2", "m3"]
    # the variant really changes the voice (a display name would silently fall back to the default)
    a, _ = sf.read(root / "yes" / "m3_s150_p40.wav")
    b, _ = sf.read(root / "yes" / "f2_s150_p40.wav")
    assert len(a) != len(b) or not np.allclose(a, b)


def test_espeak_refuses_unknown_variants(tmp_path):
    assert "m3" in voice_variants() and "Alicia" in voice_variants()
    with pytest.raises(ConfigError, match="unknown espeak-ng variant"):
        generate_spoken_words(tmp_path, words=["yes"], variants=["Male 3"])


def test_builtin_asterisk_prompts_folder():
    d = AudioModality(clip_seconds=1.0).load("builtin:asterisk")
    assert len(d) > 500 and {"digits", "letters", "phonetic"} <= set(d.class_names)
    assert (d.labels == -1).any()                                    # the top-level prompts are unlabelled
    assert "8000 Hz" in d.rate_message and d[0]["x"].shape == (1, RATE)
    with pytest.raises(DataError, match="unknown built-in audio dataset 'nope'"):
        AudioModality().load("builtin:nope")
