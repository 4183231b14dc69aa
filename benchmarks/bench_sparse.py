"""Sparse input: fastgd against scikit-learn on wide CSR data and a text pipeline.

    python benchmarks/bench_sparse.py [--rounds 3] [--docs 6000]

Each round runs every case once for fastgd and once for scikit-learn, interleaved (the
order alternates between rounds), so both see the same machine load; the table gives
the medians over the rounds, their ratio (scikit-learn time / fastgd time, > 1 means
fastgd is faster) and the held-out accuracy of each model of the last round.

Cases (issue 10's speed targets):

- 10,000 x 100,000 CSR, 100 nonzeros per row, binary and 3 classes: default
  ``LogisticRegression()`` against scikit-learn's;
- ``LogisticRegression(solver="adam", max_iter=5)`` against
  ``SGDClassifier(loss="log_loss", max_iter=5, tol=None)``: the exact step and the
  opt-in ``lazy_sparse_updates=True`` (only the batch's features' rows step), at the
  default batch of 200 rows (about 18% of the features per batch) and at 32 rows
  (about 3%);
- one ``MLPClassifier(hidden_layer_sizes=(100,), max_iter=1)`` epoch against
  scikit-learn's, and ``predict_proba`` of the fitted models over the 10,000 rows;
- ``make_pipeline(HashingVectorizer(), TfidfTransformer(), LogisticRegression())`` on
  generated documents: a Zipfian vocabulary, each class drawing 5% of its words
  from its own topical distribution.
"""

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn import linear_model, neural_network
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.pipeline import make_pipeline

import fastgd
import fastgd._build


def wide_sparse(n, d, nnz_per_row, n_classes, seed=0):
    """CSR rows with ``nnz_per_row`` distinct random columns and labels from a sparse
    linear model plus noise (so accuracy is informative, not 1)."""
    rng = np.random.RandomState(seed)
    indices = np.empty(n * nnz_per_row, dtype=np.int32)
    for i in range(n):
        indices[i * nnz_per_row:(i + 1) * nnz_per_row] = np.sort(
            rng.choice(d, nnz_per_row, replace=False))
    X = sp.csr_matrix((rng.rand(n * nnz_per_row), indices,
                       np.arange(n + 1) * nnz_per_row), shape=(n, d))
    W = rng.normal(size=(d, n_classes))
    scores = X @ W + rng.normal(scale=2.0, size=(n, n_classes))
    y = scores.argmax(axis=1) if n_classes > 2 else (scores[:, 0] > scores[:, 1])
    return X, y.astype(int)


def documents(n_docs, n_classes=4, vocab=30_000, seed=0):
    """Generated documents: Zipfian word frequencies shared by all classes, 5% of
    each document's words from its class' own Zipfian ranking of the vocabulary."""
    rng = np.random.RandomState(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    ranks = np.arange(1, vocab + 1)
    common = 1.0 / ranks**1.1
    common /= common.sum()
    topical = []
    for _ in range(n_classes):
        p = np.zeros(vocab)
        p[rng.permutation(vocab)] = 1.0 / ranks**1.0
        topical.append(p / p.sum())
    y = rng.randint(n_classes, size=n_docs)
    docs = []
    for label in y:
        length = int(rng.lognormal(np.log(120), 0.5)) + 5
        n_topic = rng.binomial(length, 0.05)
        ids = np.concatenate([rng.choice(vocab, length - n_topic, p=common),
                              rng.choice(vocab, n_topic, p=topical[label])])
        docs.append(" ".join(words[ids]))
    return docs, y


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=6000)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)

    n, d, k, n_test = 10_000, 100_000, 100, 2_000
    sets = {}
    for classes in (2, 3):
        X, y = wide_sparse(n + n_test, d, k, classes, seed=classes)
        sets[classes] = (X[:n], y[:n], X[n:], y[n:])
    docs, labels = documents(args.docs + args.docs // 5)
    docs_train, docs_test = docs[:args.docs], docs[args.docs:]
    y_train, y_test = labels[:args.docs], labels[args.docs:]
    fitted = {}

    def fit(name, make, data):
        X, y, Xt, yt = data

        def run():
            model = make().fit(X, y)
            fitted[name] = (model, Xt, yt)
            return model
        return run

    def mlp(lib):
        return lambda: lib.MLPClassifier(hidden_layer_sizes=(100,), max_iter=1,
                                         random_state=0)

    def predict(name):
        def run():
            model, _, _ = fitted[name]
            return model.predict_proba(sets[2][0])
        return run

    def pipeline(lib):
        return lambda: make_pipeline(HashingVectorizer(), TfidfTransformer(),
                                     lib.LogisticRegression())

    text = (docs_train, y_train, docs_test, y_test)
    cases = [
        ("LogisticRegression() binary",
         fit("lr2/f", fastgd.LogisticRegression, sets[2]),
         fit("lr2/s", linear_model.LogisticRegression, sets[2])),
        ("LogisticRegression() 3 classes",
         fit("lr3/f", fastgd.LogisticRegression, sets[3]),
         fit("lr3/s", linear_model.LogisticRegression, sets[3])),
        ("adam 5 epochs vs SGDClassifier(max_iter=5)",
         fit("adam/f", lambda: fastgd.LogisticRegression(solver="adam", max_iter=5,
                                                         random_state=0), sets[2]),
         fit("adam/s", lambda: linear_model.SGDClassifier(
             loss="log_loss", max_iter=5, tol=None, random_state=0), sets[2])),
        ("adam lazy_sparse_updates=True, 5 epochs vs SGDClassifier(max_iter=5)",
         fit("lazy/f", lambda: fastgd.LogisticRegression(
             solver="adam", max_iter=5, random_state=0, lazy_sparse_updates=True),
             sets[2]),
         fit("lazy/s", lambda: linear_model.SGDClassifier(
             loss="log_loss", max_iter=5, tol=None, random_state=0), sets[2])),
        ("adam batch_size=32, exact step, vs SGDClassifier(max_iter=5)",
         fit("a32/f", lambda: fastgd.LogisticRegression(
             solver="adam", max_iter=5, batch_size=32, random_state=0), sets[2]),
         fit("a32/s", lambda: linear_model.SGDClassifier(
             loss="log_loss", max_iter=5, tol=None, random_state=0), sets[2])),
        ("adam batch_size=32, lazy_sparse_updates=True, vs SGDClassifier(max_iter=5)",
         fit("l32/f", lambda: fastgd.LogisticRegression(
             solver="adam", max_iter=5, batch_size=32, random_state=0,
             lazy_sparse_updates=True), sets[2]),
         fit("l32/s", lambda: linear_model.SGDClassifier(
             loss="log_loss", max_iter=5, tol=None, random_state=0), sets[2])),
        ("MLPClassifier((100,)) 1 epoch",
         fit("mlp/f", mlp(fastgd), sets[2]), fit("mlp/s", mlp(neural_network), sets[2])),
        ("MLPClassifier predict_proba (10,000 rows)",
         predict("mlp/f"), predict("mlp/s")),
        (f"text pipeline, {args.docs} documents",
         fit("text/f", pipeline(fastgd), text), fit("text/s", pipeline(linear_model),
                                                     text)),
    ]
    keys = {0: "lr2", 1: "lr3", 2: "adam", 3: "lazy", 4: "a32", 5: "l32", 6: "mlp",
            8: "text"}
    times = {i: ([], []) for i in range(len(cases))}
    for r in range(args.rounds):
        for i, (_, ours, theirs) in enumerate(cases):
            order = [(0, ours), (1, theirs)] if r % 2 == 0 else [(1, theirs), (0, ours)]
            for side, fn in order:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    times[i][side].append(timed(fn)[0])
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    print()
    print(f"{n:,} x {d:,} CSR, {k} nonzeros per row (held-out accuracy on {n_test:,} "
          f"rows); text: {args.docs:,} training documents, {len(docs_test):,} held out; "
          f"medians of {args.rounds} interleaved rounds, fastgd kernels: "
          f"{fastgd._build.kernel_build()}")
    print()
    print("| case | fastgd | scikit-learn | ratio (sklearn / fastgd) | accuracy fastgd "
          "| accuracy scikit-learn |")
    print("|---|---|---|---|---|---|")
    for i, (name, _, _) in enumerate(cases):
        ours, theirs = np.median(times[i][0]), np.median(times[i][1])
        acc = ["", ""]
        if i in keys:
            for side, suffix in ((0, "/f"), (1, "/s")):
                model, Xt, yt = fitted[keys[i] + suffix]
                acc[side] = f"{np.mean(model.predict(Xt) == yt):.4f}"
        print(f"| {name} | {ours:.3f} s | {theirs:.3f} s | {theirs / ours:.2f}x "
              f"| {acc[0]} | {acc[1]} |")


if __name__ == "__main__":
    main()
