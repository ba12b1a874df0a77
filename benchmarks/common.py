"""What every benchmark script shares: its standard flags, its command line, and where its
results go (results/<name>.json and .md, then BENCHMARKS.md rebuilt; a quick run stays in its
run folder and never lands in BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from selfsup.io import write_json

HERE = Path(__file__).resolve().parent
LOCK = "flock /tmp/selfsup-bench.lock "


def standard_arguments(p: argparse.ArgumentParser, runs: str, name: str,
                       quick_help: str = "small data, 1 epoch, 2 seeds: checks that it runs") -> None:
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--runs", default=runs, help="folder for the pretraining runs")
    p.add_argument("--name", default=name, help="results/<name>.md and .json")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--render", action="store_true",
                   help="rewrite the markdown and verdict from results/<name>.json without running anything")


def apply_standard_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """Set the torch threads; a quick run gets its own run folder and results name."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.runs, args.name = args.runs + "_quick", args.name + "_quick"
    return args


def command_line(script: str, argv: list[str] | None, quick: bool) -> str:
    """How to rerun this benchmark: full runs take the shared benchmark lock."""
    words = [w for w in (sys.argv[1:] if argv is None else argv) if w != "--render"]
    return ((LOCK if not quick else "") + f"python benchmarks/{script} " + " ".join(words)).strip()


def run_and_publish(args: argparse.Namespace, script: str, argv: list[str] | None,
                    run: Callable[[argparse.Namespace], dict], verdict: Callable[[dict], str],
                    markdown: Callable[[dict, str], str]) -> dict:
    """The common tail of a benchmark: run it, time it, add its verdict, print its markdown
    fragment and publish it."""
    if getattr(args, "render", False):
        saved, results = saved_results(args)
        command = results.get("command") or saved_command(saved.with_suffix(".md"))
    else:
        command = command_line(script, argv, args.quick)
        started = time.perf_counter()
        results = run(args)
        results["wall_seconds"] = time.perf_counter() - started
    results["command"] = command
    results["verdict"] = verdict(results)
    text = markdown(results, command)
    print("\n" + text)
    publish(args, results, text)
    return results


def saved_results(args: argparse.Namespace) -> tuple[Path, dict]:
    """(path, results) of this benchmark's last published run, for --render."""
    saved = (Path(args.runs) if args.quick else HERE / "results") / f"{args.name}.json"
    if not saved.exists():
        raise SystemExit(f"--render: {saved} does not exist; run the benchmark first")
    return saved, json.loads(saved.read_text())


def stacked_inputs(dataset) -> torch.Tensor:
    """(N, ...) every sample's input ``x`` of a dataset, stacked in order (decoded once)."""
    return torch.stack([dataset[i]["x"] for i in range(len(dataset))])


def saved_command(fragment: Path) -> str:
    """The command a published fragment names (results made before results kept their command)."""
    match = re.search(r"Command: `([^`]+)`", fragment.read_text()) if fragment.exists() else None
    if match is None:
        raise SystemExit(f"--render: neither {fragment.with_suffix('.json')} nor {fragment} names the command "
                         "that made the results; run the benchmark again")
    return match.group(1)


def publish(args: argparse.Namespace, results: dict, markdown: str) -> Path:
    """A full run lands in results/ and BENCHMARKS.md; a quick one only in its run folder."""
    if args.quick:
        return write_files(Path(args.runs), args.name, results, markdown)
    return write_fragment(args.name, results, markdown)


def write_fragment(name: str, results, markdown: str) -> Path:
    """results/<name>.json and .md, then BENCHMARKS.md rebuilt from every fragment."""
    write_files(HERE / "results", name, results, markdown)
    return rebuild_benchmarks_md()


def write_files(folder: Path, name: str, results, markdown: str) -> Path:
    write_json(folder / f"{name}.json", results)
    (folder / f"{name}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return folder


def rebuild_benchmarks_md() -> Path:
    sys.path.insert(0, str(HERE))
    import assemble

    path = assemble.main()
    print(f"wrote {path}")
    return path
