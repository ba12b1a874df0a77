"""Pictures people would rather look at than read: confusion matrix, embedding map, curves."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from selfsup.io import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_confusion(y_true, y_pred, class_names, path, title: str = "") -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = np.arange(len(class_names)) if class_names else None
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * max(4, len(labels) if labels is not None else 4),) * 2)
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=labels, display_labels=class_names, ax=ax,
                                            colorbar=False, xticks_rotation=45, normalize="true", values_format=".2f")
    ax.set_title(title)
    return _save(fig, path)


def plot_embedding_map(z: np.ndarray, labels: np.ndarray, class_names, path, title: str = "",
                       max_points: int = 2000, seed: int = 0) -> Path:
    """t-SNE of (at most ``max_points``) embeddings, coloured by label."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(z), size=min(max_points, len(z)), replace=False)
    z2 = TSNE(2, init="pca", perplexity=min(30, max(2, len(pick) // 4)), random_state=seed).fit_transform(
        StandardScaler().fit_transform(z[pick]))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10" if len(np.unique(labels)) <= 10 else "tab20")
    for c in np.unique(labels[pick]):
        m = labels[pick] == c
        ax.scatter(z2[m, 0], z2[m, 1], s=6, color=cmap(int(c) % cmap.N),
                   label=class_names[c] if class_names and c < len(class_names) else str(c))
    ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title or "t-SNE of embeddings")
    return _save(fig, path)


def plot_training_curves(csv_dir: str | Path, path: str | Path) -> Path | None:
    """Every epoch-level metric in the newest CSV log, one panel per metric family."""
    files = sorted(Path(csv_dir).glob("version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        return None
    series: dict[str, list[tuple[float, float]]] = {}
    for file in files:
        with open(file, newline="") as f:
            for row in csv.DictReader(f):
                for key, value in row.items():
                    if value and key not in ("epoch", "step") and (key.endswith("_epoch") or key.startswith("val/")
                                                                   or not key.endswith("_step")):
                        if row.get("epoch"):
                            series.setdefault(key.removesuffix("_epoch"), []).append((float(row["epoch"]), float(value)))
    keys = [k for k in series if k.endswith("loss") or k.endswith("acc")]
    if not keys:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted(keys):
        ax = axes[0] if key.endswith("loss") else axes[1]
        pts = sorted(dict(series[key]).items())
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=key)
    axes[0].set_title("loss"), axes[1].set_title("pretext accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=7)
    return _save(fig, path)
