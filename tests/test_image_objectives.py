"""Every image objective learns its pretext task on real digits.

Each test pretrains through the real pipeline on 1,500 digits and measures the objective on
297 held-out digits (as one batch, BatchNorm on batch statistics as in training) against the
same encoder and heads as the run starts them (same seed, no step): the held-out loss falls
and the pretext measure beats both chance and that start (a random network already matches
views far above chance). The longer ones are marked slow. IIC and DeepCluster also
report NMI against the true classes of the held-out digits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from image_training import digits_split, held_out_metrics, train, untrained, whole
from selfsup.evaluation.metrics import nmi
from selfsup.objectives.deepcluster import kmeans
from selfsup.training.data import validation_split


@pytest.fixture(scope="module")
def digits():
    return digits_split()


def before_after(name, train_set, test_set, tmp_path, epochs, train_mode=True, **options):
    start = untrained(name, train_set, **options.get("objective", {}))
    run = train(name, train_set, tmp_path, epochs, **options.get("run", {}), **options.get("objective", {}))
    return run, held_out_metrics(start, test_set, train_mode), held_out_metrics(run, test_set, train_mode)


def test_simclr_learns_to_find_the_other_view(digits, tmp_path):
    train_set, test_set = digits
    run, before, after = before_after("simclr", train_set, test_set, tmp_path, epochs=3)
    assert run.epoch_losses[-1] < run.epoch_losses[0] and after["loss"] < before["loss"] - 0.3
    assert after["pos_acc"] > max(1.5 * before["pos_acc"], 20 / (2 * len(test_set) - 1)), (before, after)


@torch.no_grad()
def refill_queue(run, data):
    """Push keys of ``data`` through the queue until every entry is one of them."""
    run.objective.train()
    batch = whole(data)
    for _ in range(-(-len(run.objective.queue) // len(data))):
        run.objective(batch, run.encoder)
    run.objective.eval()


@pytest.mark.slow
def test_moco_learns_with_its_momentum_encoder_and_queue(digits, tmp_path):
    train_set, test_set = digits
    start = untrained("moco", train_set)
    run = train("moco", train_set, tmp_path, epochs=10, batch_size=64)
    queue = run.objective.queue
    assert int(run.objective.queue_filled) == len(queue)
    assert torch.allclose(queue.norm(dim=1), torch.ones(len(queue)), atol=1e-4)
    # The key encoder followed the encoder: near it, yet not equal (it is an average).
    online = torch.cat([p.flatten() for p in run.encoder.parameters()])
    key = torch.cat([p.flatten() for p in run.objective.key_encoder.parameters()])
    assert 0 < float((online - key).norm() / online.norm()) < 0.5
    # The training loss is no yardstick (the queue's negatives harden as it learns): compare
    # held-out losses with both queues filled the same way, by keys of the training digits.
    scores = {}
    for name, model in (("before", start), ("after", run)):
        refill_queue(model, train_set)
        scores[name] = held_out_metrics(model, test_set, train_mode=True)
    assert scores["after"]["loss"] < scores["before"]["loss"] - 0.3, scores
    assert scores["after"]["pos_acc"] > max(1.5 * scores["before"]["pos_acc"], 20 / (len(queue) + 1)), scores


@pytest.mark.slow
def test_supcon_pulls_same_class_views_together(digits, tmp_path):
    train_set, test_set = digits
    run, before, after = before_after("supcon", train_set, test_set, tmp_path, epochs=3)
    assert run.epoch_losses[-1] < run.epoch_losses[0] and after["loss"] < before["loss"] - 0.3
    assert after["pos_acc"] > before["pos_acc"] + 0.1, (before, after)   # nearest view of the same class


@pytest.mark.slow
def test_exemplar_recognises_new_augmentations_of_its_exemplars(digits, tmp_path):
    train_set, test_set = digits
    seeds = train_set.subset(np.arange(300))
    run = train("exemplar", seeds, tmp_path, epochs=12, batch_size=50, lr=3e-3, copies=4)
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    # Held-out augmentations: fresh random views of the surrogate classes (the samples that
    # the run trained on, numbered as in its training split), classified in eval mode.
    fit, _ = validation_split(seeds, 0.1, 0)
    batch = whole(fit)
    accuracy = {}
    for name, model in (("before", untrained("exemplar", seeds, copies=4)), ("after", run)):
        torch.manual_seed(7)
        with torch.no_grad():
            logits = model.objective.logits(model.objective.augment(batch["x"]), model.encoder)
        accuracy[name] = float((logits.argmax(dim=1) == batch["index"]).float().mean())
    assert accuracy["after"] > max(5 / len(fit), 3 * accuracy["before"]), accuracy
    # Unseen digits: two augmentations of one fall in the same surrogate class more often
    # than two independent draws from the classes' predicted frequencies would.
    x = whole(test_set)["x"]
    with torch.no_grad():
        a, b = (run.objective.logits(run.objective.augment(x), run.encoder).argmax(dim=1) for _ in range(2))
    agreement = float((a == b).float().mean())
    chance = float((torch.bincount(a, minlength=len(seeds)) * torch.bincount(b, minlength=len(seeds))).sum()) / len(x) ** 2
    assert agreement > 3 * chance, (agreement, chance)


def test_deepcluster_learns_its_pseudo_labels_and_reports_nmi(digits, tmp_path):
    train_set, test_set = digits
    run = train("deepcluster", train_set, tmp_path, epochs=4, batch_size=64, num_clusters=30)
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    assert "train/nmi_previous" in run.metrics and "train/nmi_labels" in run.metrics
    # Held-out labels are the nearest centroids of unseen digits; chance is about 1/30.
    after = held_out_metrics(run, test_set, train_mode=False)
    assert after["pretext_acc"] > 5 / 30, after
    clusters = run.objective.assign(whole(test_set)["x"], run.encoder).numpy()
    assert nmi(test_set.labels, clusters) > 0.4


@pytest.mark.slow
def test_iic_clusters_views_together_and_reports_nmi(digits, tmp_path):
    train_set, test_set = digits
    options = {"run": {"lr": 3e-3}, "objective": {"crop_scale": [0.5, 1.0], "flip": 0.0}}
    run, before, after = before_after("iic", train_set, test_set, tmp_path, epochs=5, **options)
    assert run.epoch_losses[-1] < run.epoch_losses[0] and after["loss"] < before["loss"] - 0.1
    assert after["mi_main"] > before["mi_main"] + 0.15, (before, after)   # 0 for independent assignments
    clusters = run.objective.assign(whole(test_set)["x"], run.encoder).numpy()
    assert nmi(test_set.labels, clusters) > 0.15                      # 0 before: one cluster for all


def test_dim_tells_its_own_local_features_from_others(digits, tmp_path):
    train_set, test_set = digits
    run, before, after = before_after("dim", train_set, test_set, tmp_path, epochs=2)
    assert run.epoch_losses[-1] < run.epoch_losses[0] and after["loss"] < before["loss"] - 1.0
    # The positive must beat every one of ~1,200 negatives: chance is below 0.001.
    assert after["pretext_acc"] > max(0.1, 10 * before["pretext_acc"]), (before, after)


@pytest.mark.slow
def test_cpc_predicts_patches_below(digits, tmp_path):
    train_set, test_set = digits
    run, before, after = before_after("cpc", train_set, test_set, tmp_path, epochs=2)
    assert run.epoch_losses[-1] < run.epoch_losses[0] and after["loss"] < before["loss"] - 1.0
    chance = 1 / (len(test_set) * 9)                                # among all 3 x 3 patches of the batch
    assert after["acc_step1"] > max(50 * chance, 10 * before["acc_step1"]), (before, after)


# -- k-means ----------------------------------------------------------------------------------
def test_kmeans_reseeds_empty_clusters():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.zeros(50, 2), torch.ones(50, 2) * 10])      # two tight blobs, asked for 4 clusters
    centroids, labels, reseeded = kmeans(x, 4, iterations=5, generator=g)
    assert reseeded > 0 and sorted(torch.bincount(labels, minlength=4).tolist())[0] > 0


def test_kmeans_separates_clear_blobs():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    truth = torch.arange(3).repeat_interleave(40)
    x = centres[truth] + 0.3 * torch.randn(120, 2, generator=g)
    _, labels, _ = kmeans(x, 3, generator=g)
    assert nmi(truth.numpy(), labels.numpy()) > 0.99


def test_simclr_views_in_one_or_two_passes_differ_only_in_batch_statistics():
    from selfsup.encoders.image import SmallCNN
    from selfsup.objectives.contrastive import SimCLR

    torch.manual_seed(0)
    encoder = SmallCNN(1)
    x1, x2 = torch.rand(8, 1, 16, 16), torch.rand(8, 1, 16, 16)
    one = SimCLR(encoder, lambda _b: (x1, x2), projection_dim=8, hidden=16)
    two = SimCLR(encoder, lambda _b: (x1, x2), projection_dim=8, hidden=16, views_in_one_pass=False)
    two.load_state_dict(one.state_dict())
    encoder.eval(), one.eval(), two.eval()      # running statistics: the passes must agree
    assert torch.allclose(one({}, encoder).loss, two({}, encoder).loss, atol=1e-5)
    encoder.train(), one.train(), two.train()   # batch statistics: per view vs over both views
    assert not torch.allclose(one({}, encoder).loss, two({}, encoder).loss, atol=1e-4)
