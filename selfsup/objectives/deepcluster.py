"""DeepCluster (Caron et al. 2018): k-means on the encoder's features gives pseudo-labels, a
classifier learns them, and the two alternate.

At the start of every epoch (``on_train_epoch_start``) the encoder embeds the whole training
set (the loader's dataset, in eval mode, without augmentation); the features are PCA-whitened and L2-normalised, k-means
clusters them (empty clusters are re-seeded by splitting a large one, as in the paper), and
each sample's cluster becomes its label for the epoch. Cluster ids mean nothing from one
clustering to the next, so the paper re-initialises the classifier (``reset_head=True``);
by default the new clusters are instead renumbered to match the previous ones (Hungarian
matching), so the classifier keeps what it learnt -- on small data an epoch is too few
steps to learn a fresh classifier, above all late in a decaying learning-rate schedule. The NMI between
successive assignments is logged (it rises as the features settle), and the NMI against
the true classes when the data has labels (logged only, never trained on).

Class-balanced sampling: the training batches come from the shared loader, so each batch
is re-drawn (with replacement) with weights 1 / |cluster| -- every cluster is then equally
likely to be seen, as with the paper's uniform-over-clusters sampler. ``augment`` (crops and
flips for images) is applied to the drawn samples. In eval mode a held-out sample's label
is its nearest centroid, so ``pretext_acc`` is measured on unseen data (and the NMI of
those clusters with the true classes, where the batch has labels).

Generic over modalities: it only needs ``encoder.embed``. (Sobel input is an option of the
image encoders, ``encoder_options.sobel``, so that probes see it too.)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.evaluation.metrics import nmi
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput, accuracy
from selfsup.objectives.heads import mlp
from selfsup.objectives.iic import labels_nmi


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(k, D) initial centroids spread over the data (Arthur & Vassilvitskii 2007)."""
    first = int(torch.randint(len(x), (1,), generator=generator))
    chosen = [first]
    nearest = torch.cdist(x, x[first:first + 1]).squeeze(1) ** 2
    for _ in range(k - 1):
        weights = nearest.cpu().double()
        pick = int(torch.multinomial(weights, 1, generator=generator)) if weights.sum() > 0 else \
            int(torch.randint(len(x), (1,), generator=generator))
        chosen.append(pick)
        nearest = torch.minimum(nearest, torch.cdist(x, x[pick:pick + 1]).squeeze(1) ** 2)
    return x[chosen].clone()


def kmeans(x: torch.Tensor, k: int, iterations: int = 20, generator: torch.Generator | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lloyd's k-means on (N, D) -> (centroids (k, D), labels (N,), number of re-seeds).

    Initialised by k-means++ (each new centroid drawn with probability proportional to the
    squared distance to the nearest chosen one). After each assignment, every empty cluster
    takes over half of a non-empty one (chosen with probability proportional to its size):
    its centroid becomes a slightly perturbed copy of that cluster's centroid, and the
    cluster's points are split between the two by the perturbation.
    """
    n = len(x)
    if n < k:
        raise ValueError(f"k-means with {k} clusters needs at least {k} samples, got {n}")
    g = generator
    centroids = kmeans_plus_plus(x, k, g)
    reseeded = 0
    labels = torch.zeros(n, dtype=torch.long, device=x.device)
    for _ in range(iterations):
        labels = torch.cdist(x, centroids).argmin(dim=1)
        sizes = torch.bincount(labels, minlength=k)
        for empty in (sizes == 0).nonzero().flatten().tolist():
            donor = int(torch.multinomial(sizes.float().cpu(), 1, generator=g))
            noise = 1e-4 * torch.randn(centroids.shape[1], generator=g).to(x)
            centroids[empty], centroids[donor] = centroids[donor] + noise, centroids[donor] - noise
            members = (labels == donor).nonzero().flatten()
            closer = torch.cdist(x[members], centroids[[donor, empty]]).argmin(dim=1) == 1
            if closer.all() or not closer.any():      # identical points: split them in half
                closer = torch.arange(len(members), device=x.device) % 2 == 1
            labels[members[closer]] = empty
            sizes = torch.bincount(labels, minlength=k)
            reseeded += 1
        centroids = torch.zeros_like(centroids).index_add_(0, labels, x) / sizes.clamp_min(1)[:, None].to(x)
    return centroids, labels, reseeded


def match_clusters(previous: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Renumber new clusters to overlap most with the previous ones (Hungarian matching), so
    that the classifier's outputs keep their meaning from one clustering to the next."""
    from scipy.optimize import linear_sum_assignment

    k = len(centroids)
    overlap = torch.zeros(k, k, device=labels.device).index_put_((labels, previous), torch.ones_like(labels).float(),
                                                                  accumulate=True)      # (new, old)
    new, old = linear_sum_assignment(overlap.cpu().numpy(), maximize=True)
    renumber = torch.empty(k, dtype=torch.long, device=labels.device)
    renumber[torch.as_tensor(new, device=labels.device)] = torch.as_tensor(old, device=labels.device)
    reordered = torch.empty_like(centroids)
    reordered[renumber] = centroids
    return reordered, renumber[labels]


class PCAWhitening(nn.Module):
    """Fitted PCA (to ``dim`` components) + whitening + L2 normalisation, kept as buffers."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.dim = min(dim, in_dim)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("projection", torch.eye(in_dim)[:, : self.dim].clone())

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PCAWhitening":
        self.mean.copy_(x.mean(dim=0))
        _, s, v = torch.linalg.svd(x - self.mean, full_matrices=False)
        scale = s[: self.dim] / max(1, len(x) - 1) ** 0.5
        self.projection.copy_(v[: self.dim].t() / (scale + 1e-5))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize((x - self.mean) @ self.projection, dim=1)


class DeepCluster(Objective):
    def __init__(self, encoder: Encoder, num_samples: int, num_clusters: int = 100,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None, pca_dim: int = 64,
                 kmeans_iterations: int = 20, hidden: int = 512, balanced: bool = True, reset_head: bool = False,
                 seed: int = 0):
        super().__init__()
        self.augment, self.balanced, self.reset_head, self.seed = augment, balanced, reset_head, seed
        self.num_clusters, self.kmeans_iterations = num_clusters, kmeans_iterations
        self.pca = PCAWhitening(encoder.embed_dim, pca_dim)
        self.head = mlp(encoder.embed_dim, hidden, num_clusters, layers=2, batch_norm=True)
        self.register_buffer("assignments", torch.full((num_samples,), -1, dtype=torch.long))
        self.register_buffer("centroids", torch.zeros(num_clusters, self.pca.dim))
        self.register_buffer("cluster_sizes", torch.zeros(num_clusters))

    # -- clustering -------------------------------------------------------------------------
    @torch.no_grad()
    def assign(self, x: torch.Tensor, encoder: Encoder) -> torch.Tensor:
        """(B,) nearest-centroid cluster of each sample (for held-out data and NMI)."""
        return torch.cdist(self.pca(encoder.embed(x).float()), self.centroids).argmin(dim=1)

    @torch.no_grad()
    def _features(self, encoder: Encoder, dataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features, indices, labels) of every sample of ``dataset``, in index order.

        Under DDP each process embeds every W-th sample (the shares padded to one length by
        repeating) and the shares are gathered, so every process clusters the same features.
        """
        device = next(encoder.parameters()).device
        world, rank = distributed.world_size(), distributed.rank()
        share = torch.arange(rank, len(dataset), world)
        share = share[torch.arange(-(-len(dataset) // world)) % len(share)]
        loader = DataLoader(Subset(dataset, share.tolist()), batch_size=batch_size, shuffle=False)
        was_training = encoder.training
        encoder.eval()
        feats, labels = [], []
        try:
            for batch in loader:
                feats.append(encoder.embed(batch["x"].to(device)).float())
                labels.append(batch["y"].to(device))
        finally:
            encoder.train(was_training)
        feats = distributed.gather_no_grad(torch.cat(feats))
        labels = distributed.gather_no_grad(torch.cat(labels))
        index = distributed.gather_no_grad(share.to(device))
        where = torch.empty(len(dataset), dtype=torch.long, device=device)
        where[index] = torch.arange(len(index), device=device)     # a position of each sample (repeats are equal)
        return feats[where], torch.arange(len(dataset), device=device), labels[where]

    def on_train_epoch_start(self, encoder: Encoder, dataloader, epoch: int) -> dict[str, float]:
        feats, index, labels = self._features(encoder, dataloader.dataset, dataloader.batch_size or 256)
        if len(feats) > len(self.assignments):
            raise ValueError(f"DeepCluster was built for {len(self.assignments)} samples, the loader has {len(feats)}")
        if len(feats) < self.num_clusters:
            raise ValueError(f"DeepCluster with {self.num_clusters} clusters needs at least that many training "
                             f"samples, got {len(feats)}; lower num_clusters")
        generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)   # same clustering on every process
        z = self.pca.fit(feats)(feats)
        centroids, cluster, reseeded = kmeans(z, self.num_clusters, self.kmeans_iterations, generator)
        previous = self.assignments[index].clone()
        if (previous >= 0).all() and not self.reset_head:
            centroids, cluster = match_clusters(previous, centroids, cluster)
        self.assignments[index] = cluster
        self.centroids.copy_(centroids)
        self.cluster_sizes.copy_(torch.bincount(cluster, minlength=self.num_clusters).float())
        if self.reset_head:                                # cluster ids are new: start the classifier afresh
            for m in self.head.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        logged = {"reseeded_clusters": float(reseeded)}
        if (previous >= 0).all():
            logged["nmi_previous"] = nmi(previous.cpu().numpy(), cluster.cpu().numpy())
        known = labels >= 0
        if known.sum() > 1:
            logged["nmi_labels"] = nmi(labels[known].cpu().numpy(), cluster[known].cpu().numpy())
        return logged

    # -- step -------------------------------------------------------------------------------
    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        if self.cluster_sizes.sum() == 0:
            raise RuntimeError("DeepCluster has no clusters yet: on_train_epoch_start must run before a step")
        if self.training:
            target = self.assignments[batch["index"]]
            if self.balanced:
                pick = torch.multinomial(1.0 / self.cluster_sizes[target].clamp_min(1), len(target), replacement=True)
                x, target = x[pick], target[pick]
            if self.augment is not None:
                x = self.augment(x)
        else:
            target = self.assign(x, encoder)
        logits = self.head(encoder.embed(x))
        metrics = {"pretext_acc": accuracy(logits, target),
                   "clusters_in_batch": torch.tensor(float(len(target.unique())))}
        if not self.training:
            metrics.update(labels_nmi(batch, target))
        return ObjectiveOutput(F.cross_entropy(logits, target), metrics)


__all__ = ["DeepCluster", "kmeans", "PCAWhitening"]
