"""scikit-learn's MLPClassifier with verbose=True and early_stopping (prints Validation score)."""

from _truth import write_truth
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier

X, y = make_classification(
    n_samples=1500, n_features=20, n_informative=8, n_classes=3, flip_y=0.15, random_state=0
)
clf = MLPClassifier(
    hidden_layer_sizes=(32,),
    max_iter=60,
    early_stopping=True,
    n_iter_no_change=6,
    verbose=True,
    random_state=0,
)
clf.fit(X, y)

write_truth(
    history=list(clf.validation_scores_),
    total_epochs=clf.max_iter,
    epochs_done=clf.n_iter_,
    best_accuracy=clf.best_validation_score_,
    epoch_base=1,
    accuracy_key="Validation score",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="MLPClassifier.validation_scores_, best_validation_score_, n_iter_, max_iter",
    notes="iterations are epochs; stopped early when validation did not improve",
)
