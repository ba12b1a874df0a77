"""selfsup.distributed.gather: differentiable all-gather, checked with two gloo processes."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup import distributed


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        w = torch.randn(3, 4, 5)                              # the same on both processes
        x = (torch.arange(2 * 3 * 5, dtype=torch.float32).view(2, 3, 5) + 100 * rank).requires_grad_()
        keys = distributed.gather(x, 0)                       # (4, 3, 5)
        # permute makes the gradient reaching gather non-contiguous (the case torch's own op got wrong)
        (keys * w.permute(1, 0, 2)).sum().backward()
        y = torch.ones(2, 3, requires_grad=True)
        gathered_last = distributed.gather(y * (rank + 1), -1)   # (2, 6), along a negative dim
        (gathered_last * torch.arange(6.0)).sum().backward()
        torch.save({"keys": keys.detach(), "grad": x.grad, "y_grad": y.grad,
                    "last": gathered_last.detach()}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_with_gradients_on_two_processes(tmp_path):
    mp.spawn(_worker, args=(_port(), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(r0["keys"], r1["keys"])
    assert torch.equal(r0["keys"][2:], r0["keys"][:2] + 100)
    torch.manual_seed(0)
    w = torch.randn(3, 4, 5).permute(1, 0, 2)                # (4, 3, 5)
    # each process's loss touches every gathered row: 2 losses contribute to each process's rows
    assert torch.allclose(r0["grad"], 2 * w[:2]) and torch.allclose(r1["grad"], 2 * w[2:])
    assert torch.equal(r0["last"][:, 3:], 2 * r0["last"][:, :3])
    weights = torch.arange(6.0)
    assert torch.allclose(r0["y_grad"], 2 * 1 * weights[:3].expand(2, 3))
    assert torch.allclose(r1["y_grad"], 2 * 2 * weights[3:].expand(2, 3))


def test_gather_is_identity_in_one_process():
    x = torch.randn(3, 2, requires_grad=True)
    assert distributed.gather(x) is x and distributed.world_size() == 1 and distributed.rank() == 0


