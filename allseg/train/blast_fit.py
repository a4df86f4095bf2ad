"""Fits the blast call to a lab's labelled cells: scikit-learn's logistic regression on the
cells' standardised cell_features, the classes weighed equally. A linear call on a few dozen
numbers is what tens of cells can pin down; its cross-validated scores say how well it did
before any cell it was scored on was seen."""
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from allseg.cells.blast_call import BlastCall

STRENGTH = 0.1  # scikit-learn's C: strong shrinkage, for a handful of cells a class
FOLDS = 5


def fit_blast_call(features, is_blast, about=None, threshold=0.5):
    """A BlastCall fitted to all the cells given."""
    x, y = np.asarray(features, np.float64), np.asarray(is_blast, bool)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a number no cell varies in carries no weight, not a division by 0
    model = LogisticRegression(C=STRENGTH, class_weight="balanced", max_iter=10_000)
    model.fit((x - mean) / scale, y)
    return BlastCall(tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()),
                     float(model.intercept_[0]), threshold, dict(about or {}))


def cross_validated(features, is_blast, seed=0):
    """p(blast) for every cell from a call fitted without it (stratified folds, seeded): what
    the call does on cells it has not seen."""
    x, y = np.asarray(features, np.float64), np.asarray(is_blast, bool)
    folds = min(FOLDS, int(y.sum()), int((~y).sum()))
    p = np.zeros(len(y))
    for fit_on, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        p[held] = fit_blast_call(x[fit_on], y[fit_on]).probabilities(x[held])
    return p
