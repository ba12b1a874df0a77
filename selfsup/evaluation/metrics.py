"""Classification and clustering scores (scikit-learn), and the paired comparison of two methods
over seeds (scipy)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (accuracy_score, cohen_kappa_score, f1_score, normalized_mutual_info_score)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "kappa": float(cohen_kappa_score(y_true, y_pred)),
    }


def nmi(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    return float(normalized_mutual_info_score(labels_a, labels_b))


def mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def paired_difference(a: list[float], b: list[float], groups: int = 1) -> dict[str, float | int | None]:
    """Method a against method b, seed by seed (seed i gave both the same labelled subset).

    Seeds in one group (i mod ``groups``, e.g. probes of one pretraining run) are not
    independent: the one-sided t-test (a > b) runs on one mean difference per group, or per seed
    when ``groups`` is 1. ``p`` is None when there is nothing to test: fewer than two values, or
    the same difference every time.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two equally long lists of at least 2 seeds, got {len(a)} and {len(b)}")
    diff = a - b
    groups = max(1, min(groups, len(diff)))
    tested = np.array([diff[i::groups].mean() for i in range(groups)]) if groups > 1 else diff
    p = (float(stats.ttest_1samp(tested, 0.0, alternative="greater").pvalue)
         if len(tested) >= 2 and not np.allclose(tested, tested[0]) else None)
    return {"mean": float(diff.mean()), "std": float(diff.std(ddof=1)), "higher": int((diff > 0).sum()),
            "seeds": len(diff), "tested": len(tested), "p": p}
