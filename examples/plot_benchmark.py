"""
A benchmark chart: time per epoch, fastgd vs scikit-learn
=========================================================

A small version of ``python -m fastgd bench``: the same data, architecture,
initial weights and batch size for both libraries, 3 epochs per fit, rounds
interleaved (the order alternates), the median time per epoch of each. Times on a
shared machine are noisy: compare the ratios within one run. The README of the
repository has the full reference runs.
"""

import statistics
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from fastgd import MLPClassifier

X, y = make_classification(n_samples=5_000, n_features=100, n_informative=50,
                           n_classes=10, random_state=0)
X = X.astype(np.float32)
batch_sizes = [32, 100, 200]
libraries = [("fastgd", MLPClassifier), ("scikit-learn", SkMLPClassifier)]
rounds, epochs = 3, 3

medians = {name: [] for name, _ in libraries}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for batch in batch_sizes:
        times = {name: [] for name, _ in libraries}
        for r in range(rounds):
            for name, cls in (libraries if r % 2 == 0 else libraries[::-1]):
                model = cls(hidden_layer_sizes=(100,), batch_size=batch,
                            max_iter=epochs, tol=0, random_state=0)
                start = time.perf_counter()
                model.fit(X, y)
                times[name].append((time.perf_counter() - start) / model.n_iter_)
        for name in times:
            medians[name].append(statistics.median(times[name]))
        ratio = medians["scikit-learn"][-1] / medians["fastgd"][-1]
        print(f"batch {batch:>4}: fastgd {medians['fastgd'][-1] * 1e3:7.1f} ms, "
              f"scikit-learn {medians['scikit-learn'][-1] * 1e3:7.1f} ms per epoch "
              f"({ratio:.1f}x)")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for name in medians:
    left.plot(batch_sizes, np.array(medians[name]) * 1e3, "o-", label=name)
left.set(xscale="log", yscale="log", xlabel="batch size",
         ylabel="time per epoch (ms), median",
         title="5,000 x 100 float32, (100,) relu, adam")
left.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
left.legend()
right.bar([str(b) for b in batch_sizes],
          np.array(medians["scikit-learn"]) / np.array(medians["fastgd"]))
right.set(xlabel="batch size", ylabel="scikit-learn time / fastgd time",
          title="speed-up, same run")
fig.tight_layout()
plt.show()
