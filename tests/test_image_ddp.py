"""Batch-wide image objectives under DDP: two CPU processes (gloo), each with half of a global
batch of real digits, give the loss and the gradients of one process over the whole batch.

Each process computes its objective on its half (keys gathered across processes), then the
losses and gradients are averaged over processes as DDP does. BatchNorm runs on running
statistics (eval mode) so that it cannot differ between the two set-ups; the views are fixed
(the image and its mirror) so that both set-ups see the same pixels. MoCo is also checked
over two steps for the same queue on every process, and DeepCluster for the same clusters.
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.datasets.images import load_digits_images
from selfsup.encoders.image import SmallCNN
from selfsup.modalities.image_transforms import patch_grid
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.cpc_grid import GridCPC
from selfsup.objectives.deepcluster import DeepCluster
from selfsup.objectives.dim import DIM
from selfsup.objectives.iic import IIC
from selfsup.objectives.moco import MoCo
from selfsup.objectives.supcon import SupCon

WORLD, PER_PROCESS = 2, 12
BATCH_WIDE = ("simclr", "supcon", "dim", "iic", "cpc", "moco")


def mirror_views(batch):
    return batch["x"], batch["x"].flip(-1)


def build(name: str):
    torch.manual_seed(0)
    encoder = SmallCNN(1, widths=(8, 16, 16, 16))
    objective = {
        "simclr": lambda: SimCLR(encoder, mirror_views, projection_dim=16, hidden=32),
        "supcon": lambda: SupCon(encoder, mirror_views, projection_dim=16, hidden=32),
        "dim": lambda: DIM(encoder, dim=16, hidden=32),
        "iic": lambda: IIC(encoder, mirror_views, num_clusters=4, subheads=2),
        "cpc": lambda: GridCPC(encoder, lambda b: patch_grid(b["x"], 4, 2), context_dim=16),
        "moco": lambda: MoCo(encoder, mirror_views, projection_dim=16, hidden=32, queue_size=64),
    }[name]()
    if name == "iic":                           # sharper cluster heads than at init: gradients far from 0
        for head in objective.modules():
            if isinstance(head, torch.nn.Linear):
                torch.nn.init.normal_(head.weight, std=3.0)
    # float64: some of these gradients are tiny differences of large terms (IIC's near-uniform
    # clusters), where float32 rounding alone differs between one and two processes by ~1%.
    encoder, objective = encoder.double(), objective.double()
    encoder.eval()
    objective.eval()
    if name == "moco":
        objective.train()                       # enqueues only in training mode ...
        objective.key_encoder.eval()            # ... but BatchNorm stays on running statistics
    return encoder, objective


def global_batches(steps: int = 2) -> list[dict[str, torch.Tensor]]:
    data = load_digits_images()
    n = WORLD * PER_PROCESS
    batches = []
    for s in range(steps):
        idx = torch.arange(s * n, (s + 1) * n)
        y = torch.as_tensor(data.labels[idx.numpy()])
        y[::5] = -1                              # some unlabelled samples: SupCon's own-view positives
        batches.append({"x": torch.stack([data[int(i)]["x"] for i in idx]).double(), "y": y, "index": idx})
    return batches


def run_steps(name: str, batches, rank: int = 0, world: int = 1) -> list[dict]:
    """Loss and gradients (averaged over processes, as DDP does) of each step, from scratch."""
    encoder, objective = build(name)
    params = {f"encoder.{k}": p for k, p in encoder.named_parameters()}
    params.update({f"objective.{k}": p for k, p in objective.named_parameters() if p.requires_grad})
    results = []
    for batch in batches:
        n = len(batch["x"]) // world
        local = {k: v[rank * n:(rank + 1) * n] for k, v in batch.items()}
        for p in params.values():
            p.grad = None
        loss = objective(local, encoder).loss
        loss.backward()
        loss = loss.detach()
        grads = {k: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for k, p in params.items()}
        if world > 1:
            dist.all_reduce(loss)
            for g in grads.values():
                dist.all_reduce(g)
            loss, grads = loss / world, {k: g / world for k, g in grads.items()}
        step = {"loss": loss, "grads": grads}
        if name == "moco":
            step["queue"] = objective.queue[: int(objective.queue_filled)].clone()
        results.append(step)
    return results


def cluster_assignments(rank: int = 0, world: int = 1) -> torch.Tensor:
    torch.manual_seed(0)
    encoder = SmallCNN(1, widths=(8, 16, 16, 16)).eval()
    data = load_digits_images().subset(range(101))          # not a multiple of 2: shares get padded
    objective = DeepCluster(encoder, len(data), num_clusters=5, pca_dim=8)
    objective.on_train_epoch_start(encoder, torch.utils.data.DataLoader(data, batch_size=16), epoch=0)
    return objective.assignments.clone()


def worker(rank: int, port: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        batches = global_batches()
        out = {name: run_steps(name, batches, rank, WORLD) for name in BATCH_WIDE}
        out["deepcluster"] = cluster_assignments(rank, WORLD)
        torch.save(out, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(free_port(), str(folder)), nprocs=WORLD, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.parametrize("name", BATCH_WIDE)
def test_loss_and_gradients_match_one_process_over_the_global_batch(two_processes, name):
    single = run_steps(name, global_batches())
    for rank in range(WORLD):
        for step, (mine, ref) in enumerate(zip(two_processes[rank][name], single)):
            assert torch.allclose(mine["loss"], ref["loss"], atol=1e-10), (name, step, mine["loss"], ref["loss"])
            ref_grad = torch.cat([g.flatten() for g in ref["grads"].values()])
            my_grad = torch.cat([mine["grads"][k].flatten() for k in ref["grads"]])
            assert ref["grads"]["encoder.stages.conv1.0.weight"].norm() > 1e-4 * ref_grad.norm() > 0
            assert (my_grad - ref_grad).norm() < 1e-8 * ref_grad.norm(), (name, step)


def test_moco_queue_is_the_same_on_every_process(two_processes):
    single = run_steps("moco", global_batches())
    for step in range(2):
        queues = [two_processes[r]["moco"][step]["queue"] for r in range(WORLD)]
        assert len(queues[0]) == WORLD * PER_PROCESS * (step + 1)
        assert torch.allclose(queues[0], queues[1], atol=1e-12)
        assert torch.allclose(queues[0], single[step]["queue"], atol=1e-10)


def test_deepcluster_clusters_identically_on_every_process(two_processes):
    single = cluster_assignments()
    assert (single >= 0).all()
    for rank in range(WORLD):
        assert torch.equal(two_processes[rank]["deepcluster"], single)
