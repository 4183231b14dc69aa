"""
Loss curves: fastgd and scikit-learn side by side
=================================================

``fastgd.MLPClassifier`` draws the same initial weights and the same shuffles as
scikit-learn's ``MLPClassifier`` for the same ``random_state``, so in float64 the
two training loss curves coincide to rounding. Here both train on the digits data
for 40 epochs with adam; the right panel shows the difference of the two curves.
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from fastgd import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
params = dict(hidden_layer_sizes=(64,), max_iter=40, random_state=0)

curves, times = {}, {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 40 epochs: not converged
    for name, cls in [("fastgd", MLPClassifier), ("scikit-learn", SkMLPClassifier)]:
        start = time.perf_counter()
        curves[name] = np.array(cls(**params).fit(X, y).loss_curve_)
        times[name] = time.perf_counter() - start

difference = np.abs(curves["fastgd"] - curves["scikit-learn"])
print(f"fit time: fastgd {times['fastgd']:.3f} s, "
      f"scikit-learn {times['scikit-learn']:.3f} s")
print(f"largest |difference| of the loss curves: {difference.max():.2e}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
epochs = np.arange(1, len(difference) + 1)
left.plot(epochs, curves["scikit-learn"], lw=4, alpha=0.4, label="scikit-learn")
left.plot(epochs, curves["fastgd"], "k--", lw=1, label="fastgd")
left.set(xlabel="epoch", ylabel="training loss (log loss)", yscale="log",
         title="loss_curve_")
left.legend()
right.plot(epochs, np.maximum(difference, 1e-18))
right.set(xlabel="epoch", ylabel="|fastgd - scikit-learn|", yscale="log",
          title="difference of the two curves")
fig.tight_layout()
plt.show()
