"""Batch-wide image objectives under DDP: two CPU processes (gloo), each with half of a global
batch of real digits, give the loss and the gradients of one process over the whole batch.

Each process computes its objective on its half (keys gathered across processes), then the
losses and gradients are averaged over processes as DDP does. BatchNorm runs on running
statistics (eval mode) so that it cannot differ between the two set-ups; the views are fixed
(the image and its mirror) so that both set-ups see the same pixels. MoCo is also checked
over two steps for the same queue on every process, and DeepCluster for the same clusters.
"""

from __future__ import annotations

import pytest
import torch

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
from tests.ddp_harness import WORLD, assert_same_step, loss_and_grads, run_in_processes

PER_PROCESS = 12
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
    results = []
    for batch in batches:
        step = loss_and_grads(objective, encoder, batch, rank, world)
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


def worker(rank: int, world: int) -> dict:
    batches = global_batches()
    out = {name: run_steps(name, batches, rank, world) for name in BATCH_WIDE}
    out["deepcluster"] = cluster_assignments(rank, world)
    return out


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    return run_in_processes(worker, tmp_path_factory.mktemp("ddp"))


@pytest.mark.parametrize("name", BATCH_WIDE)
def test_loss_and_gradients_match_one_process_over_the_global_batch(two_processes, name):
    single = run_steps(name, global_batches())
    for rank in range(WORLD):
        for mine, ref in zip(two_processes[rank][name], single):
            assert ref["grads"]["encoder.stages.conv1.0.weight"].norm() > 0
            assert_same_step(mine, ref)


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
