"""scikit-learn's HistGradientBoostingClassifier(verbose=2, early_stopping, scoring='accuracy'):
one line per iteration with a train score and a val score."""

from _truth import write_truth
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

X, y = make_classification(
    n_samples=3000, n_features=20, n_informative=6, n_classes=3, flip_y=0.2, random_state=0
)
clf = HistGradientBoostingClassifier(
    max_iter=60, early_stopping=True, scoring="accuracy", n_iter_no_change=5,
    validation_fraction=0.2, learning_rate=0.3, verbose=2, random_state=0,
)
clf.fit(X, y)
scores = list(clf.validation_score_[1:])  # [0] is the score before the first iteration
write_truth(
    history=scores,
    total_epochs=clf.max_iter,
    epochs_done=clf.n_iter_,
    epoch_base=1,
    accuracy_key="val score",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="HistGradientBoostingClassifier.validation_score_[1:], n_iter_, max_iter",
    notes="iterations are epochs ('[3/60] 3 trees, ... train score: ..., val score: ...'); "
    "train score is a training accuracy; stopped early",
)
