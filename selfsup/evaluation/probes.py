"""Classifiers fitted on frozen embeddings: linear (logistic regression), kNN, RBF-SVM.

Protocol (fixed here, stated in BENCHMARKS.md): features are standardised with statistics of
the labelled training subset; the linear probe is L2-regularised logistic regression with
C = 1; kNN uses cosine distance, k = 5, distance weighting; the SVM (TS2Vec's protocol)
chooses C in 10^-4 .. 10^4 by stratified cross-validation on the training subset.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

FROZEN_PROTOCOLS = ("linear", "knn", "svm")


def make_probe(protocol: str, y_train: np.ndarray, seed: int = 0, c: float = 1.0, k: int = 5):
    if protocol == "linear":
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, random_state=seed))
    if protocol == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(k, len(y_train)),
                                                                    metric="cosine", weights="distance"))
    if protocol == "svm":
        svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale", C=c))
        folds = min(5, int(np.bincount(y_train)[np.unique(y_train)].min()))
        if folds < 2:
            return svm
        return GridSearchCV(svm, {"svc__C": [10.0 ** e for e in range(-4, 5)]},
                            cv=StratifiedKFold(folds, shuffle=True, random_state=seed), n_jobs=1)
    raise ValueError(f"unknown frozen protocol {protocol!r}; choose from {FROZEN_PROTOCOLS}")


def fit_predict(protocol: str, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, seed: int = 0,
                **options) -> np.ndarray:
    probe = make_probe(protocol, y_train, seed, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(z_train, y_train)
    return probe.predict(z_test)
