"""Batch-wide sensor objectives under DDP: two gloo processes, each with half of a global batch
of real watch windows, give the loss and gradients of one process over the whole batch.

float64 and BatchNorm on running statistics, so that only the distributed maths can differ;
views are fixed (a window and its time reversal; for hierarchical contrast one crop geometry
with no offsets or masks) so that both set-ups see the same inputs.
"""

import pytest
import torch

from selfsup.modalities.sensor import SensorModality
from selfsup.objectives import hierarchical_contrast
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.cpc import CPC
from tests.ddp_harness import assert_same_step, loss_and_grads, run_in_processes

CASES = ("simclr", "cpc", "hierarchical-contrast")


def _batch():
    data = SensorModality().load("builtin:watch")
    return {"x": data.x[::97][:16].double(), "index": torch.arange(16)}


def _fixed_crops(batch, length, min_overlap, device=None):
    return hierarchical_contrast.OverlappingCrops(torch.zeros(batch, dtype=torch.long, device=device),
                                                  0, 20, 70, length)


def _build(name):
    torch.manual_seed(0)
    if name == "hierarchical-contrast":
        encoder = SensorModality().build_encoder("dilated-conv", in_channels=6, depth=3, hidden=16, out_dim=16)
        objective = hierarchical_contrast.HierarchicalContrast(encoder, mask_p=0.0)
        return encoder.double().eval(), objective.double().eval()
    encoder = SensorModality().build_encoder("tpn", in_channels=6)
    if name == "simclr":
        objective = SimCLR(encoder, lambda b: (b["x"], b["x"].flip(-1)), projection_dim=16, hidden=32)
    else:
        objective = CPC(encoder, steps=2, context_dim=16, num_negatives=None)   # all negatives: deterministic
    return encoder.double().eval(), objective.double().eval()


def _steps(rank: int, world: int) -> dict:
    batch = _batch()
    torch.manual_seed(rank)                      # different random streams: the geometry must still agree
    geometry = hierarchical_contrast.draw_overlapping_crops(4, 100, 2)
    hierarchical_contrast.draw_overlapping_crops = _fixed_crops
    steps = {name: loss_and_grads(*reversed(_build(name)), batch, rank, world) for name in CASES}
    return {**steps, "geometry": (geometry.outer_left, geometry.left, geometry.right, geometry.outer_right)}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    return run_in_processes(_steps, tmp_path_factory.mktemp("ddp"))


@pytest.mark.parametrize("name", CASES)
def test_distributed_step_equals_one_process_over_the_global_batch(two_processes, name):
    ref = _steps(0, 1)[name]
    for rank in range(2):
        assert_same_step(two_processes[rank][name], ref)


def test_hierarchical_contrast_crops_agree_across_processes(two_processes):
    assert two_processes[0]["geometry"] == two_processes[1]["geometry"]
