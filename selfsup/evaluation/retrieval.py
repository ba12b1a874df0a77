"""Nearest-neighbour retrieval with a frozen encoder: a figure of queries and their top matches.

Neighbours are by cosine similarity of the encoder's embeddings (``extract_embeddings``, the
same frozen, eval-mode features as every probe), centred on the gallery's mean embedding
(``centre``): pooled ReLU features all point into one orthant, where every cosine is near 1.
When the gallery is the query set itself, a query never retrieves itself. With labels, each match is framed green (same class as the
query) or red, and ``precision_at_k`` (the fraction of the k neighbours sharing the query's
class, over up to ``max_scored`` queries) puts a number beside the picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.evaluation.features import extract_embeddings


def nearest_neighbours(queries: np.ndarray, gallery: np.ndarray, k: int, exclude: np.ndarray | None = None,
                       chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each (Q, k): the k most cosine-similar gallery rows of every
    query, best first. ``exclude`` (Q,): a gallery row each query may not retrieve (itself)."""
    g = F.normalize(torch.as_tensor(gallery, dtype=torch.float32), dim=1)
    k = min(k, len(g) - (exclude is not None))
    found, scores = [], []
    for start in range(0, len(queries), chunk):          # chunks: a Q x N matrix at once may not fit
        q = F.normalize(torch.as_tensor(queries[start: start + chunk], dtype=torch.float32), dim=1)
        sim = q @ g.T
        if exclude is not None:
            own = torch.as_tensor(exclude[start: start + chunk], dtype=torch.long)
            sim[torch.arange(len(q)), own] = float("-inf")
        top = sim.topk(k, dim=1)
        found.append(top.indices.numpy())
        scores.append(top.values.numpy())
    return np.concatenate(found), np.concatenate(scores)


def retrieval(encoder: Encoder, queries: SampleDataset, gallery: SampleDataset | None = None, k: int = 5,
              num_queries: int = 8, max_scored: int = 1000, seed: int = 0, out: str | Path | None = None,
              title: str = "", centre: bool = True) -> dict:
    """Embed ``queries`` and ``gallery`` (default: the queries themselves, leaving each query
    out), find every query's k nearest gallery samples, draw ``num_queries`` random ones with
    their matches to ``out`` (a PNG) and score precision@k where labels allow.

    Returns {"queries": (n,) indices, "matches": (n, k), "similarities": (n, k),
    "precision_at_k": float or None, "k": k, "path": str or None}.
    """
    same = gallery is None
    gallery = queries if same else gallery
    z_query = extract_embeddings(encoder, queries)
    z_gallery = z_query if same else extract_embeddings(encoder, gallery)
    if centre:
        mean = z_gallery.mean(axis=0, keepdims=True)
        z_query, z_gallery = z_query - mean, z_gallery - mean
    rng = np.random.default_rng(seed)
    scored = np.sort(rng.choice(len(queries), size=min(max_scored, len(queries)), replace=False))
    matches, sims = nearest_neighbours(z_query[scored], z_gallery, k, exclude=scored if same else None)
    precision = None
    if queries.has_labels and gallery.has_labels:
        precision = float((gallery.labels[matches] == queries.labels[scored][:, None]).mean())
    shown = rng.choice(len(scored), size=min(num_queries, len(scored)), replace=False)
    result = {"queries": scored[shown], "matches": matches[shown], "similarities": sims[shown],
              "precision_at_k": precision, "k": int(matches.shape[1]), "path": None}
    if out is not None:
        result["path"] = str(plot_retrieval(queries, gallery, result["queries"], result["matches"],
                                            result["similarities"], out, title, precision))
    return result


def _picture(x: torch.Tensor):
    """(C, H, W) in [0, 1] -> what imshow takes: (H, W) grey or (H, W, 3) colour."""
    x = x.detach().float().clamp(0, 1).cpu()
    return x[0].numpy() if x.shape[0] == 1 else x[:3].permute(1, 2, 0).numpy()


def plot_retrieval(queries: SampleDataset, gallery: SampleDataset, query_ids, matches, similarities, path,
                   title: str = "", precision: float | None = None) -> Path:
    """One row per query: the query, then its matches (cosine similarity above each);
    green / red frames where labels say a match is of the query's class or not."""
    from selfsup.evaluation.plots import _save, plt

    rows, k = len(query_ids), matches.shape[1]
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.3 * (k + 1), 1.4 * rows), squeeze=False)
    labelled = queries.has_labels and gallery.has_labels
    names = queries.class_names
    for r, (q, row) in enumerate(zip(query_ids, matches)):
        cells = [(queries[int(q)]["x"], None, "query")] + [
            (gallery[int(m)]["x"], gallery.labels[m] == queries.labels[q] if labelled else None, f"{s:.2f}")
            for m, s in zip(row, similarities[r])]
        for c, (x, same_class, caption) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(_picture(x), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0 and labelled:
                caption = names[queries.labels[q]] if names else f"class {queries.labels[q]}"
            ax.set_title(caption, fontsize=7)
            if same_class is not None:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:green" if same_class else "tab:red")
                    spine.set_linewidth(2.5)
    heading = title or "nearest neighbours (cosine) of random queries"
    if precision is not None:
        heading += f"; precision@{k} = {precision:.3f}"
    fig.suptitle(heading, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, path)


__all__ = ["retrieval", "nearest_neighbours", "plot_retrieval"]
