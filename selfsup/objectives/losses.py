"""Pure loss functions shared by the objectives: no memory banks, no process groups, no heads.

All contrastive objectives (SimCLR, MoCo, CPC, DIM, hierarchical contrast, video) reduce to
``info_nce`` on a logits matrix whose target column marks the positive.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def info_nce(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE as cross-entropy over candidates.

    logits (..., N, K): similarity of each of N queries to K candidates (already / temperature,
    masked entries at -inf); targets (..., N): index of the positive. Returns (mean loss,
    top-1 accuracy of picking the positive).
    """
    flat = logits.reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    loss = F.cross_entropy(flat, t)
    acc = (flat.detach().argmax(dim=-1) == t).float().mean()
    return loss, acc


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, normalize: bool = True,
            gather: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
            rank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """NT-Xent (SimCLR): row i of z1 and row i of z2 are positives, every other row a negative.

    z1, z2 (..., N, D); leading dims are independent problems (hierarchical contrast uses them
    for time steps). ``gather(tensor, dim)`` (with this process's ``rank``) concatenates the keys of
    all processes along N so that negatives span the global batch; gradients flow back
    through it (see ``selfsup.distributed.gather``).
    """
    if normalize:
        z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    n = z1.shape[-2]
    queries = torch.cat([z1, z2], dim=-2)                      # (..., 2n, D): local views
    # Keys: every process's [z1; z2] block, rank after rank -> (..., 2nW, D).
    keys = queries if gather is None else gather(queries, -2)
    offset = rank * 2 * n
    logits = queries @ keys.transpose(-1, -2) / temperature    # (..., 2n, 2nW)
    local = torch.arange(2 * n, device=z1.device)
    self_index = offset + local
    logits = logits.masked_fill(F.one_hot(self_index, keys.shape[-2]).bool(), float("-inf"))
    targets = offset + (local + n) % (2 * n)                   # view 1 <-> view 2 of the same sample
    return info_nce(logits, targets.expand(logits.shape[:-1]))


def sampled_info_nce(queries: torch.Tensor, keys: torch.Tensor, num_negatives: int | None,
                     temperature: float = 1.0, pool: torch.Tensor | None = None, offset: int = 0,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE where row i of ``keys`` is query i's positive and the negatives come from ``pool``
    (default: ``keys``): ``num_negatives`` rows drawn uniformly, or every row when None.

    queries, keys (N, D); pool (M, D), in which row ``offset + i`` is query i's positive
    (pool = keys of all processes, offset = this process's first row). Candidates that are the
    positive itself are masked out.
    """
    n = queries.shape[0]
    pool = keys if pool is None else pool
    own = offset + torch.arange(n, device=queries.device)                          # (N,) positive's row in pool
    positive = (queries * keys).sum(-1, keepdim=True)                               # (N, 1)
    if num_negatives is None:
        negative = queries @ pool.t()                                               # (N, M)
        is_positive = own[:, None] == torch.arange(pool.shape[0], device=queries.device)[None]
    else:
        neg_index = torch.randint(0, pool.shape[0], (n, num_negatives), device=queries.device, generator=generator)
        negative = torch.einsum("nd,nkd->nk", queries, pool[neg_index])             # (N, num_negatives)
        is_positive = neg_index == own[:, None]
    logits = torch.cat([positive, negative.masked_fill(is_positive, float("-inf"))], dim=1) / temperature
    return info_nce(logits, torch.zeros(n, dtype=torch.long, device=queries.device))
