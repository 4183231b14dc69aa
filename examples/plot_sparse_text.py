"""
Sparse text: TF-IDF features in a CSR matrix
============================================

fastgd trains on scipy sparse matrices without densifying them: the first layer
multiplies the sparse rows by the dense weights. This example classifies short
documents by topic from their TF-IDF vectors. The corpus is generated here (no
download): each document mixes words of its topic with words shared by all topics.

A sparse fit equals the dense fit of the same data to rounding; the example checks
it and plots the words with the largest coefficients of each topic.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split

from fastgd import LogisticRegression

rng = np.random.RandomState(0)
topics = {
    "space": "orbit rocket planet launch nasa moon satellite astronaut telescope mars",
    "sport": "match goal team season coach league score player final stadium",
    "cooking": "recipe oven flour sauce garlic butter bake simmer taste onion",
    "computing": "compiler kernel thread memory cache python code bug release linux",
}
common = ("the a of and to in is it that for on with as was this by are be at or "
          "from new one said about more time").split()
labels, documents = [], []
for label, words in topics.items():
    words = words.split()
    for _ in range(400):
        n_topic, n_common = rng.randint(3, 8), rng.randint(10, 25)
        doc = list(rng.choice(words, n_topic)) + list(rng.choice(common, n_common))
        # a few words of another topic, so that the problem is not trivial
        other = topics[rng.choice([t for t in topics if t != label])].split()
        doc += list(rng.choice(other, rng.randint(0, 4)))
        rng.shuffle(doc)
        documents.append(" ".join(doc))
        labels.append(label)

docs_train, docs_test, y_train, y_test = train_test_split(
    documents, labels, test_size=0.25, random_state=0, stratify=labels)
vectorizer = TfidfVectorizer()
X_train = vectorizer.fit_transform(docs_train)  # scipy.sparse CSR
X_test = vectorizer.transform(docs_test)
print(f"{X_train.shape[0]} documents x {X_train.shape[1]} words, "
      f"{X_train.nnz / np.prod(X_train.shape):.1%} nonzero ({type(X_train).__name__})")

start = time.perf_counter()
sparse_model = LogisticRegression(C=10.0).fit(X_train, y_train)
sparse_time = time.perf_counter() - start
dense_model = LogisticRegression(C=10.0).fit(X_train.toarray(), y_train)
print(f"sparse fit {sparse_time:.3f} s; test accuracy "
      f"{sparse_model.score(X_test, y_test):.4f}")
print("largest |coef_ sparse - coef_ dense|: "
      f"{np.abs(sparse_model.coef_ - dense_model.coef_).max():.2e}")

words = vectorizer.get_feature_names_out()
fig, axes = plt.subplots(1, len(sparse_model.classes_), figsize=(12, 3.5))
for ax, label, coef in zip(axes, sparse_model.classes_, sparse_model.coef_):
    top = np.argsort(coef)[-8:]
    ax.barh(words[top], coef[top])
    ax.set_title(label)
    ax.tick_params(labelsize=8)
axes[0].set_xlabel("coefficient")
fig.suptitle("largest coefficients of each topic (LogisticRegression on TF-IDF, CSR)")
fig.tight_layout()
plt.show()
