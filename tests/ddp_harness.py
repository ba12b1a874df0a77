"""Run a function in two gloo processes and compare it with one process over the global batch."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn: Callable, port: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.save(fn(rank, WORLD), f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_in_processes(fn: Callable[[int, int], object], folder: Path) -> list:
    """``fn(rank, world)`` in each of two processes (fn must be importable); their results."""
    mp.spawn(_entry, args=(fn, free_port(), str(folder)), nprocs=WORLD, join=True)
    return [torch.load(Path(folder) / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def loss_and_grads(objective, encoder, batch: dict, rank: int = 0, world: int = 1) -> dict:
    """One step on this process's share of ``batch``; loss and gradients averaged over
    processes the way DDP averages them."""
    params = {f"encoder.{k}": p for k, p in encoder.named_parameters()}
    params.update({f"objective.{k}": p for k, p in objective.named_parameters() if p.requires_grad})
    for p in params.values():
        p.grad = None
    n = len(batch["x"]) // world
    local = {k: v[rank * n:(rank + 1) * n] for k, v in batch.items()}
    loss = objective(local, encoder).loss
    loss.backward()
    loss = loss.detach()
    grads = {k: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for k, p in params.items()}
    if world > 1:
        dist.all_reduce(loss)
        for g in grads.values():
            dist.all_reduce(g)
        loss, grads = loss / world, {k: g / world for k, g in grads.items()}
    return {"loss": loss, "grads": grads}


def assert_same_step(mine: dict, ref: dict, rtol: float = 1e-8) -> None:
    assert torch.allclose(mine["loss"], ref["loss"], atol=1e-10, rtol=0), (mine["loss"], ref["loss"])
    ref_grad = torch.cat([g.flatten() for g in ref["grads"].values()])
    my_grad = torch.cat([mine["grads"][k].flatten() for k in ref["grads"]])
    assert ref_grad.norm() > 0
    assert (my_grad - ref_grad).norm() <= rtol * ref_grad.norm(), ((my_grad - ref_grad).norm(), ref_grad.norm())
