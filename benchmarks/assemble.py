"""Rebuild BENCHMARKS.md from the fragments that each benchmark script writes.

Each script writes ``benchmarks/results/<name>.md`` (its section, including the command that
made it) and ``<name>.json`` (the raw numbers). This script only concatenates: the header
below, then the sections in ORDER, then any others alphabetically. Run it after a benchmark.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["har", "audio", "audio_replication", "audio_sequence", "images", "images_pretext", "video", "throughput", "loader",
         "throughput_device_cpu", "throughput_gpu"]

HEADER = """# Benchmarks

Every figure here was produced by a script in `benchmarks/`; each section names its command.
Machine: the 2-core CPU development machine (no GPU) unless a section says otherwise; wall
times are from that machine and noisy, so speed claims are ratios measured within one run.
Every script also takes `--quick` (small data: checks that it runs; never lands here) and
`--render` (rewrites its section from `benchmarks/results/<name>.json` without running).

## Evaluation protocol (fixed in `selfsup/evaluation/`, the same for every row)

- The encoder is frozen in eval mode: BatchNorm uses its running statistics, dropout is off.
- A sample's representation is the encoder's `embed`: its own pooling of its output (max over
  time for the sequence encoders, as TPN and TS2Vec do).
- Features are standardised with the statistics of the labelled training subset.
- Linear probe: logistic regression, C = 1. kNN: k = 5, cosine distance, distance-weighted.
  SVM: RBF kernel, C chosen in 10^-4..10^4 by stratified cross-validation on the training subset.
- Fine-tuning / supervised from scratch: encoder + linear head, AdamW (lr 1e-3, cosine decay),
  max(30 epochs, 300 steps) over the labelled subset, batch 64.
- Every self-supervised row stands beside the same encoder randomly initialised (probed the same
  way) and trained supervised from scratch, on the same split. Seeds vary the labelled subset,
  the probe and (for random init) the encoder's initialisation; figures are mean ± std.
- Few-label budgets: one label subset per seed, except where a section says that each seed's
  score is the mean over several label subsets (`evaluate(..., label_draws=K)`; draw 0 is the
  seed's own subset). The main audio section does so (K = 5) because which 100 clips were labelled
  moved its scores more than the encoder did.
"""


def main() -> Path:
    fragments = {p.stem: p for p in (HERE / "results").glob("*.md")}
    names = [n for n in ORDER if n in fragments] + sorted(set(fragments) - set(ORDER))
    text = HEADER + "".join("\n" + fragments[n].read_text().strip() + "\n" for n in names)
    out = HERE.parent / "BENCHMARKS.md"
    out.write_text(text)
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
