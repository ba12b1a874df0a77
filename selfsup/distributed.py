"""The one place where batch-wide losses talk across processes.

``gather`` concatenates a tensor from every process *with gradients*: the backward pass
sends each process the gradient of every other process's loss with respect to its own
rows, so under DDP (which averages gradients over processes) a loss computed on gathered
keys has exactly the gradient of the same loss computed by one process on the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


class _GatherWithGrad(torch.autograd.Function):
    """Forward: all_gather + cat. Backward: every process holds d(its loss)/d(gathered); their
    sum, restricted to this process's rows, is what flows back to this process's tensor.

    (torch.distributed.nn's all_gather gave wrong gradients on gloo when the incoming
    gradient was not contiguous, e.g. after an einsum; this makes it contiguous first.)
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.dim, ctx.rows = dim, tensor.shape[dim]
        return torch.cat(parts, dim=dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.narrow(ctx.dim, dist.get_rank() * ctx.rows, ctx.rows), None


def gather(tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """All processes' ``tensor`` concatenated along ``dim`` in rank order, differentiable.
    Every process must pass the same shape."""
    if not is_distributed():
        return tensor
    return _GatherWithGrad.apply(tensor, dim % tensor.dim())


def gather_no_grad(tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Like ``gather`` for tensors that carry no gradient (queues, pseudo-labels, features)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=dim)


def broadcast_ints(values: list[int], src: int = 0) -> list[int]:
    """Process ``src``'s integers on every process: for random choices that must agree across
    processes (e.g. one crop geometry for a batch whose features are then gathered)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.long)
    dist.broadcast(t, src)
    return t.tolist()
