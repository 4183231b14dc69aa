"""lazy_sparse_updates: with CSR input each mini-batch step moves only the first
layer's rows of the features stored in the batch. Step for step against torch
(float64, same initial weights, shuffle=False): torch.optim.SparseAdam, and
torch.optim.SGD with sparse gradients, given the full objective's gradient on
exactly those rows."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import fastgd
from conftest import glorot

torch = pytest.importorskip("torch")

N, D, H, BATCH = 40, 50, 5, 8


def _data(seed=0):
    """CSR rows with 3 stored features each out of 50: every batch of 8 rows misses
    most features. One stored value is an explicit zero (its row still counts as
    present)."""
    rng = np.random.RandomState(seed)
    cols = np.concatenate([np.sort(rng.choice(D, 3, replace=False)) for _ in range(N)])
    vals = rng.normal(size=3 * N)
    vals[4] = 0.0
    X = sp.csr_matrix((vals, cols, np.arange(N + 1) * 3), shape=(N, D))
    y = np.asarray(X @ rng.normal(size=D)).ravel() + 0.1 * rng.normal(size=N)
    return X, y


def _rows_gradient(grad, rows):
    """The dense gradient ``grad`` kept on ``rows`` only, as a sparse tensor."""
    index = torch.as_tensor(rows, dtype=torch.int64).reshape(1, -1)
    return torch.sparse_coo_tensor(index, grad[rows], grad.shape,
                                   check_invariants=True).coalesce()


def _torch_lazy_run(X, y, solver, n_epochs, lr, alpha):
    """scikit-learn's MLPRegressor objective per batch (half mean squared error plus
    alpha / 2 ||W||^2 / batch rows); W1's gradient is kept on the rows of the
    batch's stored features, the other parameters' on all their rows."""
    coefs, intercepts = glorot([D, H, 1], 0)
    params = [torch.tensor(a, requires_grad=True) for a in coefs + intercepts]
    if solver == "adam":
        opt = torch.optim.SparseAdam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.0)
    W1, W2, b1, b2 = params
    Xd, yt = torch.tensor(X.toarray()), torch.tensor(y).reshape(-1, 1)
    history = []
    for _ in range(n_epochs):
        for start in range(0, N, BATCH):
            xb, yb = Xd[start:start + BATCH], yt[start:start + BATCH]
            out = torch.tanh(xb @ W1 + b1) @ W2 + b2
            loss = 0.5 * ((yb - out) ** 2).mean()
            loss = loss + 0.5 * alpha * ((W1 ** 2).sum() + (W2 ** 2).sum()) / len(xb)
            grads = torch.autograd.grad(loss, params)
            present = np.unique(X[start:start + BATCH].indices)
            for p, g in zip(params, grads):
                rows = present if p is W1 else np.arange(p.shape[0])
                p.grad = _rows_gradient(g, rows)
            opt.step()
        history.append([p.detach().numpy().copy() for p in (W1, b1, W2, b2)])
    return history


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_lazy_mlp_matches_torch_sparse_optimizers_step_for_step(solver):
    """5 steps per epoch, compared after each of 4 epochs, alpha > 0 (so the exact
    step would move every row of W1)."""
    X, y = _data()
    lr, alpha, n_epochs = 0.01, 0.05, 4
    ref = _torch_lazy_run(X, y, solver, n_epochs, lr, alpha)
    est = fastgd.MLPRegressor(hidden_layer_sizes=(H,), activation="tanh",
                              solver=solver, alpha=alpha, batch_size=BATCH,
                              learning_rate_init=lr, shuffle=False, random_state=0,
                              momentum=0.0, lazy_sparse_updates=True)
    for epoch in range(n_epochs):
        est.partial_fit(X, y)
        ours = [est.coefs_[0], est.intercepts_[0], est.coefs_[1], est.intercepts_[1]]
        for a, b in zip(ours, ref[epoch]):
            assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"epoch {epoch}")
    # Against the exact (dense) step: the rows differ, beyond the tolerance.
    exact = fastgd.MLPRegressor(hidden_layer_sizes=(H,), activation="tanh",
                                solver=solver, alpha=alpha, batch_size=BATCH,
                                learning_rate_init=lr, shuffle=False, random_state=0,
                                momentum=0.0)
    for _ in range(n_epochs):
        exact.partial_fit(X, y)
    assert np.abs(exact.coefs_[0] - est.coefs_[0]).max() > 1e-4


def test_lazy_logistic_leaves_absent_features_alone():
    """A feature no row stores keeps its initial coefficient exactly; the fit is
    deterministic and predicts as well as the exact step here."""
    X, y = _data(1)
    X = X.tolil()
    X[:, 7] = 0.0           # feature 7 stored nowhere (its column emptied)
    X = X.tocsr()
    X.eliminate_zeros()
    labels = (y > np.median(y)).astype(int)
    kw = dict(solver="adam", max_iter=3, batch_size=BATCH, random_state=0)
    with pytest.warns(Warning):  # max_iter reached
        lazy = fastgd.LogisticRegression(lazy_sparse_updates=True, **kw).fit(X, labels)
    with pytest.warns(Warning):
        again = fastgd.LogisticRegression(lazy_sparse_updates=True, **kw).fit(X, labels)
    assert_array_equal(lazy.coef_, again.coef_)
    assert lazy.coef_[0, 7] == 0.0
    assert np.count_nonzero(lazy.coef_) > D // 2


def test_lazy_has_no_effect_on_dense_input():
    X, y = _data()
    X = X.toarray()
    kw = dict(hidden_layer_sizes=(H,), solver="adam", batch_size=BATCH, max_iter=2,
              shuffle=False, random_state=0)
    with pytest.warns(Warning):
        exact = fastgd.MLPRegressor(**kw).fit(X, y)
    with pytest.warns(Warning):
        lazy = fastgd.MLPRegressor(lazy_sparse_updates=True, **kw).fit(X, y)
    for a, b in zip(exact.coefs_ + exact.intercepts_, lazy.coefs_ + lazy.intercepts_):
        assert_array_equal(a, b)


@pytest.mark.parametrize("params, match", [
    (dict(solver="lbfgs"), "mini-batch"),
    (dict(solver="adam", max_grad_norm=1.0), "max_grad_norm"),
])
def test_lazy_refused_where_it_cannot_apply(params, match):
    X, y = _data()
    est = fastgd.MLPRegressor(hidden_layer_sizes=(H,), lazy_sparse_updates=True,
                              **params)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


def test_lazy_sliced_batches_agree_with_one_slice(monkeypatch):
    """Two row slices per batch (private W1 gradients summed by rows, the other
    parameters' summed densely before the step) give the one-slice result to
    rounding."""
    rng = np.random.RandomState(3)
    X = sp.random(600, 500, density=0.1, format="csr", random_state=rng)
    y = rng.normal(size=600)
    kw = dict(hidden_layer_sizes=(32,), solver="adam", batch_size=300, max_iter=3,
              shuffle=False, random_state=0, alpha=0.01, lazy_sparse_updates=True)
    fits = {}
    for cap in ("1", "2"):
        monkeypatch.setenv("FASTGD_MAX_SLICES", cap)
        data = fastgd._engine.KernelData(X, np.float64)
        fits[cap] = data.slices_for(np.array([500, 32, 1]), 300)
        with pytest.warns(Warning):  # max_iter reached
            fits[cap, "est"] = fastgd.MLPRegressor(**kw).fit(X, y)
    assert (fits["1"], fits["2"]) == (1, 2)
    one, two = fits["1", "est"], fits["2", "est"]
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        assert_allclose(a, b, rtol=1e-10, atol=1e-13)
