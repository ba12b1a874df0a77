"""Every predictive pretext task learns on real images, measured on images it never saw:
pretext accuracy well above chance, or reconstruction / colour error below a trivial
predictor's. Grey tasks train on scikit-learn's digits (upsampled where tiles need room);
the colour tasks on crops of scikit-learn's two sample photographs (left part for training,
right part held out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from image_training import digits_split, held_out_metrics, train, untrained, whole
from selfsup.config import PretrainConfig
from selfsup.modalities.image import ImageModality
from selfsup.modalities.image_pretext import sample_photo_crops
from selfsup.objectives.layer_combination import LayerLasso
from selfsup.objectives.multitask import MultiTask
from selfsup.objectives.transformation import TransformationPrediction
from selfsup.training.run import pretrain


@pytest.fixture(scope="module")
def digits8():
    return digits_split()


@pytest.fixture(scope="module")
def digits16():
    return digits_split(size=16)


@pytest.fixture(scope="module")
def digits24():
    train_set, test_set = digits_split(size=24)
    return train_set.subset(np.arange(400)), test_set


@pytest.fixture(scope="module")
def photos():
    return sample_photo_crops()


def test_rotation_is_transformation_prediction_and_learns_which_way_digits_turned(digits8, tmp_path):
    train_set, test_set = digits8
    run = train("rotation", train_set.subset(np.arange(500)), tmp_path, epochs=2, batch_size=32)
    assert isinstance(run.objective, TransformationPrediction) and run.objective.form == "multiclass"
    assert run.objective.names == ["rot0", "rot90", "rot180", "rot270"]
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    before = held_out_metrics(untrained("rotation", train_set), test_set)["pretext_acc"]
    after = held_out_metrics(run, test_set)["pretext_acc"]
    assert after > 0.6 and after > before + 0.3, (before, after)        # chance: 0.25


def test_relative_position_learns_where_the_second_patch_sits(digits24, tmp_path):
    train_set, test_set = digits24
    run = train("relative-position", train_set, tmp_path, epochs=3, batch_size=32)
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    acc = held_out_metrics(run, test_set)["pretext_acc"]
    assert acc > 3 / 8, acc                                                # chance: 1/8


def test_jigsaw_learns_which_permutation_shuffled_the_tiles(digits24, tmp_path):
    train_set, test_set = digits24
    run = train("jigsaw", train_set, tmp_path, epochs=3, batch_size=32, permutations=30)
    assert len(run.objective.permutations) == 30
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    acc = held_out_metrics(run, test_set)["pretext_acc"]
    assert acc > 10 / 30, acc                                              # chance: 1/30


def test_inpainting_fills_the_centre_better_than_the_mean_image(digits16, tmp_path):
    train_set, test_set = digits16
    run = train("inpainting", train_set.subset(np.arange(800)), tmp_path, epochs=2, batch_size=32)
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    m = held_out_metrics(run, test_set)
    # The trivial predictor fills each missing pixel with the held-out digits' own mean image there.
    assert m["relative_mse"] < 0.75, m


def test_counting_makes_tile_counts_add_up_to_the_whole(digits16, tmp_path):
    train_set, test_set = digits16
    run = train("counting", train_set.subset(np.arange(600)), tmp_path, epochs=3, batch_size=32)
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    before = held_out_metrics(untrained("counting", train_set), test_set)
    after = held_out_metrics(run, test_set)
    assert after["loss"] < before["loss"], (before, after)
    assert after["pretext_acc"] > 0.8, after                               # chance: 0.5
    assert after["match_acc"] > 10 / len(test_set), after                  # chance: 1 / 297


def test_colorization_predicts_colours_of_unseen_photo_parts(photos, tmp_path):
    train_set, test_set = photos
    run = train("colorization", train_set, tmp_path, epochs=3, batch_size=32, lr=3e-3)
    weights = run.objective.class_weights
    assert torch.isfinite(weights).all() and weights.max() > 2 * weights.min()   # rebalancing is on
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    m = held_out_metrics(run, test_set)
    # Trivial predictors: the held-out crops' own colour distribution everywhere; their mean ab.
    assert m["nll"] < m["prior_nll"] and m["ab_error"] < 0.9 * m["mean_ab_error"], m


def test_split_brain_halves_predict_each_other(photos, tmp_path):
    train_set, test_set = photos
    run = train("split-brain", train_set, tmp_path, epochs=3, batch_size=32, lr=3e-3)
    assert run.epoch_losses[-1] < run.epoch_losses[0]
    m = held_out_metrics(run, test_set)
    assert m["nll_ab"] < m["prior_nll_ab"] and m["nll_L"] < m["prior_nll_L"], m
    assert m["pretext_acc_L"] > m["majority_acc_L"] + 0.05, m


def _pretrain(objective: str, data, out, epochs: int, **options):
    config = PretrainConfig(modality="image", data="<digits>", out=str(out), objective=objective, epochs=epochs,
                            batch_size=32, objective_options=options, progress=False)
    return pretrain(config, dataset=data)


def test_multitask_with_lasso_learns_both_tasks_and_logs_layer_weights(digits8, tmp_path):
    train_set, _ = digits8
    # Held-out here: the run's own validation split (10% of the images, never trained on).
    result = _pretrain("rotation:1,counting:0.5", train_set.subset(np.arange(700)), tmp_path, epochs=2,
                       rotation={"lasso": 0.01}, counting={})
    m = result.metrics
    assert m["val/rotation/pretext_acc"] > 0.5, m                          # chance 0.25
    assert m["val/counting/pretext_acc"] > 0.7, m                          # chance 0.5
    alphas = [m[f"val/rotation/alpha_conv{i}"] for i in range(1, 5)]
    assert m["val/rotation/lasso_l1"] == pytest.approx(sum(abs(a) for a in alphas), rel=1e-4)
    assert "val/counting/lasso_l1" not in m                                 # lasso only where asked


def _layer_weights_after_training(data, penalty: float, steps: int = 15) -> dict[str, float]:
    torch.manual_seed(0)
    modality = ImageModality()
    encoder = modality.build_encoder(None, **modality.encoder_kwargs(data))
    objective = modality.build_objective("rotation", encoder, data, lasso=penalty)
    assert isinstance(objective, LayerLasso)
    optimiser = torch.optim.Adam([*encoder.parameters(), *objective.parameters()], lr=2e-2)
    batch = whole(data)
    for _ in range(steps):
        optimiser.zero_grad()
        objective(batch, encoder).loss.backward()
        optimiser.step()
    return objective.layer_weights()


def test_lasso_shrinks_the_layer_weights_it_penalises(digits8):
    data = digits8[0].subset(np.arange(32))
    free, penalised = _layer_weights_after_training(data, 0.0), _layer_weights_after_training(data, 1.0)
    assert list(free) == ["conv1", "conv2", "conv3", "conv4"]
    kept = lambda weights: sum(a > 0 for a in weights.values())  # noqa: E731
    assert kept(penalised) < kept(free) and sum(penalised.values()) < 0.5 * sum(free.values()), (free, penalised)


def test_s4l_learns_labels_from_a_tenth_and_rotation_from_all(digits8, tmp_path):
    train_set, test_set = digits8
    result = _pretrain("s4l", train_set.subset(np.arange(700)), tmp_path, epochs=3, label_fraction=0.1)
    modality = ImageModality()
    objective = modality.build_objective("s4l", result.encoder, train_set, label_fraction=0.1)
    assert isinstance(objective, MultiTask) and set(objective.parts) == {"supervised", "rotation"}
    assert 0.05 < result.metrics["train/supervised/labelled"] < 0.15
    # The supervised head, with the run's weights, on held-out digits and all their labels.
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    objective.load_state_dict({k[len("objective."):]: v for k, v in state.items() if k.startswith("objective.")})
    batch = whole(test_set)
    with torch.no_grad():
        predicted = objective.parts["supervised"].part.head(result.encoder.embed(batch["x"])).argmax(1)
        rotation = objective.parts["rotation"].eval()(batch, result.encoder).metrics["pretext_acc"]
    assert (predicted == batch["y"]).float().mean() > 0.6                   # chance 0.1, 10% of labels seen
    assert rotation > 0.5                                                   # chance 0.25
