"""
Validation curves, a validation set of your own, learning-rate schedules
=========================================================================

With ``early_stopping=True`` fastgd records the validation loss of every epoch in
``validation_loss_curve_`` next to scikit-learn's ``validation_scores_``.
``fit(X, y, X_val=..., y_val=...)`` scores a validation set you hold out yourself
instead of the ``validation_fraction`` split, and ``early_stopping_metric="loss"``
stops on the validation loss instead of the score.

The right panel compares the constant learning rate with
``learning_rate="cosine"`` and a linear warm-up (``warmup_epochs``).
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastgd import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.25,
                                                  random_state=0)

clf = MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True,
                    early_stopping_metric="loss", n_iter_no_change=10,
                    max_iter=300, random_state=0)
clf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
print(f"stopped after {clf.n_iter_} epochs; best validation loss "
      f"{clf.best_validation_loss_:.4f}; validation accuracy "
      f"{clf.score(X_val, y_val):.4f}")

schedules = {
    "constant": dict(learning_rate="constant"),
    "cosine": dict(learning_rate="cosine"),
    "cosine + 5 warm-up epochs": dict(learning_rate="cosine", warmup_epochs=5),
}
curves = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed 60 epochs
    for name, extra in schedules.items():
        model = MLPClassifier(hidden_layer_sizes=(64,), solver="sgd",
                              learning_rate_init=0.1, max_iter=60, tol=0,
                              random_state=0, **extra)
        curves[name] = model.fit(X_train, y_train).loss_curve_
        print(f"{name:<28} final training loss {curves[name][-1]:.4f}, "
              f"validation accuracy {model.score(X_val, y_val):.4f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(clf.loss_curve_, label="training loss (loss_curve_)")
left.plot(clf.validation_loss_curve_, label="validation loss (validation_loss_curve_)")
left.set(xlabel="epoch", ylabel="log loss", yscale="log",
         title="early_stopping_metric='loss', fit(X_val=, y_val=)")
twin = left.twinx()
twin.plot(clf.validation_scores_, color="C2", ls=":", label="validation accuracy")
twin.set_ylabel("validation accuracy")
left.legend(loc="lower left", fontsize=8)
twin.legend(loc="center right", fontsize=8)
for name, curve in curves.items():
    right.plot(curve, label=name)
right.set(xlabel="epoch", ylabel="training loss", yscale="log",
          title="solver='sgd', learning_rate_init=0.1")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()
