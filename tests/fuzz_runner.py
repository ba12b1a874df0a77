"""Run one decoder over many (damaged) files in this process and report each outcome.

    python tests/fuzz_runner.py DECODER FOLDER RESULTS.jsonl

Outcomes: "ok", "data_error" (with the message), "other_error" (type and message), "hang"
(over the per-file alarm). Before each file its name goes to RESULTS.jsonl.current, so if the
process crashes (a segfault in a codec) the caller knows which file did it.
"""

import json
import signal
import sys
from pathlib import Path


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def decoders():
    from selfsup.datasets.audio_io import load_audio
    from selfsup.datasets.hdf5 import read_hdf5
    from selfsup.datasets.images import read_image
    from selfsup.datasets.video_io import read_frames

    return {"audio": lambda p: load_audio(p, 16000), "image": read_image, "hdf5": read_hdf5,
            "video": lambda p: read_frames(p, size=32, max_frames=30)}


def main(decoder: str, folder: str, results: str) -> None:
    from selfsup.errors import DataError

    fn = decoders()[decoder]
    signal.signal(signal.SIGALRM, _alarm)
    current = Path(results + ".current")
    with open(results, "w") as out:
        for path in sorted(Path(folder).iterdir()):
            current.write_text(path.name)
            signal.alarm(20)
            try:
                fn(path)
                row = {"file": path.name, "outcome": "ok"}
            except DataError as exc:
                row = {"file": path.name, "outcome": "data_error", "message": str(exc)}
            except Hang:
                row = {"file": path.name, "outcome": "hang"}
            except Exception as exc:  # noqa: BLE001 - what the test is looking for
                row = {"file": path.name, "outcome": "other_error", "message": f"{type(exc).__name__}: {exc}"}
            finally:
                signal.alarm(0)
            out.write(json.dumps(row) + "\n")
            out.flush()
    current.unlink()


if __name__ == "__main__":
    main(*sys.argv[1:])
