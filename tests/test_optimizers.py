"""The solvers 'adamw', 'rmsprop', 'adagrad' and max_grad_norm, step for step against
torch.optim and torch.nn.utils.clip_grad_norm_ (float64, same initial weights,
shuffle=False so batches are the rows in order), plus their validation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from conftest import glorot

torch = pytest.importorskip("torch")

N, D, H = 60, 4, 6


def _data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, D))
    y = X @ rng.normal(size=D) + 0.3 * np.tanh(X[:, 0] * X[:, 1]) + 0.1 * rng.normal(size=N)
    return X, y


def _torch_optimizer(solver, coefs, intercepts, lr, weight_decay=0.0, beta_2=0.999,
                     epsilon=1e-8):
    if solver == "adamw":
        return torch.optim.AdamW(
            [{"params": coefs, "weight_decay": weight_decay},
             {"params": intercepts, "weight_decay": 0.0}],
            lr=lr, betas=(0.9, beta_2), eps=epsilon)
    params = coefs + intercepts
    if solver == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=beta_2, eps=epsilon)
    if solver == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=epsilon)
    assert solver == "sgd"
    return torch.optim.SGD(params, lr=lr, momentum=0.0)


def _torch_mlp_run(X, y, solver, batch_size, n_epochs, lr, alpha, max_grad_norm=None,
                   activation=torch.tanh, rates=None, hidden=H, **opt_params):
    """scikit-learn's MLPRegressor objective per batch (half mean squared error plus
    alpha / 2 ||W||^2 / batch rows) trained by torch; the weights after every epoch."""
    coefs, intercepts = glorot([X.shape[1], hidden, 1], 0)
    W = [torch.tensor(c, requires_grad=True) for c in coefs]
    b = [torch.tensor(c, requires_grad=True) for c in intercepts]
    opt = _torch_optimizer(solver, W, b, lr, **opt_params)
    Xt, yt = torch.tensor(X), torch.tensor(y).reshape(-1, 1)
    history = []
    for epoch in range(n_epochs):
        if rates is not None:
            for group in opt.param_groups:
                group["lr"] = rates[epoch]
        for start in range(0, len(X), batch_size):
            xb, yb = Xt[start:start + batch_size], yt[start:start + batch_size]
            out = activation(xb @ W[0] + b[0]) @ W[1] + b[1]
            loss = 0.5 * ((yb - out) ** 2).mean()
            loss = loss + 0.5 * alpha * sum((w ** 2).sum() for w in W) / len(xb)
            opt.zero_grad()
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(W + b, max_grad_norm)
            opt.step()
        history.append([t.detach().numpy().copy() for t in W + b])
    return history


def _ours(est):
    return [np.asarray(a) for a in est.coefs_ + est.intercepts_]


CASES = [
    ("adamw", dict(weight_decay=0.05)),
    ("adamw", dict(weight_decay=0.0)),
    ("rmsprop", dict(beta_2=0.9)),
    ("rmsprop", dict()),
    ("adagrad", dict()),
]


@pytest.mark.parametrize("solver, params", CASES)
@pytest.mark.parametrize("batch_size", [N, 10])
def test_mlp_solver_matches_torch_step_for_step(solver, params, batch_size):
    """batch_size=N: one step per partial_fit, compared after each of 25 steps;
    batch_size=10: 6 steps per epoch, compared after each of 4 epochs (24 steps).
    With alpha (scikit-learn's L2 in the gradient) and, for adamw, decoupled decay."""
    X, y = _data()
    lr, alpha = 0.01, 0.01
    n_epochs = 25 if batch_size == N else 4
    ref = _torch_mlp_run(X, y, solver, batch_size, n_epochs, lr, alpha, **params)
    est = fastgd.MLPRegressor(hidden_layer_sizes=(H,), activation="tanh",
                              solver=solver, alpha=alpha, batch_size=batch_size,
                              learning_rate_init=lr, shuffle=False, random_state=0,
                              **params)
    for epoch in range(n_epochs):
        est.partial_fit(X, y)
        for a, b in zip(_ours(est), ref[epoch]):
            assert_allclose(a, b, rtol=1e-6, atol=1e-12, err_msg=f"epoch {epoch}")
    # The weights moved well beyond the tolerance.
    assert max(np.abs(a - b).max() for a, b in zip(_ours(est), ref[0])) > 1e-3


@pytest.mark.parametrize("solver", ["adamw", "rmsprop", "adagrad"])
def test_fit_with_cosine_warm_start_matches_torch(solver):
    """fit() (a fresh optimizer), cosine schedule stepped per epoch (torch: the
    group's lr set per epoch as CosineAnnealingLR(T_max=max_iter) would)."""
    X, y = _data(1)
    lr, max_iter = 0.02, 5
    rates = [lr * (1 + np.cos(np.pi * e / max_iter)) / 2 for e in range(max_iter)]
    params = {"weight_decay": 0.1} if solver == "adamw" else {}
    ref = _torch_mlp_run(X, y, solver, 15, max_iter, lr, 1e-3, rates=rates, **params)
    est = fastgd.MLPRegressor(hidden_layer_sizes=(H,), activation="tanh",
                              solver=solver, alpha=1e-3, batch_size=15,
                              learning_rate_init=lr, learning_rate="cosine",
                              max_iter=max_iter, shuffle=False, random_state=0,
                              tol=0.0, n_iter_no_change=1000, **params)
    with pytest.warns(Warning):  # max_iter reached
        est.fit(X, y)
    for a, b in zip(_ours(est), ref[-1]):
        assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    # warm_start continues from the weights with a new optimizer (scikit-learn's rule)
    est.set_params(warm_start=True, max_iter=1, learning_rate="constant")
    with pytest.warns(Warning):
        est.fit(X, y)
    assert np.isfinite(est.loss_)


@pytest.mark.parametrize("solver, params", [("sgd", {}), ("adamw", {"weight_decay": 0.1}),
                                            ("rmsprop", {}), ("adagrad", {})])
def test_max_grad_norm_matches_torch_clip_grad_norm(solver, params):
    """The whole gradient (all parameters, the L2 term included) clipped to
    max_grad_norm before each step, as clip_grad_norm_ on the same gradient."""
    X, y = _data(2)
    y = 5 * y  # large gradients: most steps are clipped
    lr, alpha, max_norm = 0.01, 0.01, 0.5
    ref = _torch_mlp_run(X, y, solver, 10, 4, lr, alpha, max_grad_norm=max_norm,
                         **params)
    unclipped = _torch_mlp_run(X, y, solver, 10, 4, lr, alpha, **params)
    est = fastgd.MLPRegressor(hidden_layer_sizes=(H,), activation="tanh",
                              solver=solver, alpha=alpha, batch_size=10,
                              learning_rate_init=lr, shuffle=False, random_state=0,
                              momentum=0.0, max_grad_norm=max_norm, **params)
    for epoch in range(4):
        est.partial_fit(X, y)
        for a, b in zip(_ours(est), ref[epoch]):
            assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert max(np.abs(a - b).max() for a, b in zip(ref[-1], unclipped[-1])) > 1e-3


def test_max_grad_norm_large_changes_nothing():
    X, y = _data()
    kw = dict(hidden_layer_sizes=(H,), solver="adam", shuffle=False, random_state=0,
              max_iter=3, batch_size=10)
    with pytest.warns(Warning):
        a = fastgd.MLPRegressor(**kw).fit(X, y)
    with pytest.warns(Warning):
        b = fastgd.MLPRegressor(max_grad_norm=1e6, **kw).fit(X, y)
    for u, v in zip(_ours(a), _ours(b)):
        assert_allclose(u, v, rtol=1e-12)


def _torch_linear_run(X, y, solver, batch_size, n_epochs, lr, l2, loss,
                      max_grad_norm=None, **params):
    w = torch.zeros((X.shape[1], 1), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = _torch_optimizer(solver, [w], [b], lr, **params)
    Xt, yt = torch.tensor(X), torch.tensor(y, dtype=torch.float64).reshape(-1, 1)
    for _ in range(n_epochs):
        for start in range(0, len(X), batch_size):
            z = Xt[start:start + batch_size] @ w + b
            t = yt[start:start + batch_size]
            if loss == "log":
                data_loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
            else:
                data_loss = 0.5 * ((t - z) ** 2).mean()
            total = data_loss + 0.5 * l2 * (w ** 2).sum()
            opt.zero_grad()
            total.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_([w, b], max_grad_norm)
            opt.step()
    return w.detach().numpy().ravel(), b.detach().numpy()


@pytest.mark.parametrize("solver, params", CASES[::2] + [("rmsprop", {})])
def test_linear_models_solvers_match_torch(solver, params):
    """LinearRegression and LogisticRegression (C: an L2 of 1 / (C n) per sample)
    with the new solvers, and clipping, 5 epochs of 6 batches."""
    X, y = _data(3)
    lr = 0.05
    w, b = _torch_linear_run(X, y, solver, 10, 5, lr, 0.0, "squared",
                             max_grad_norm=0.3, **params)
    est = fastgd.LinearRegression(solver=solver, batch_size=10, learning_rate_init=lr,
                                  shuffle=False, max_iter=5, tol=0.0,
                                  random_state=0, max_grad_norm=0.3, **params)
    with pytest.warns(Warning):
        est.fit(X, y)
    assert_allclose(est.coef_, w, rtol=1e-6)
    assert_allclose(est.intercept_, b[0], rtol=1e-6)

    labels = (y > np.median(y)).astype(int)
    C = 0.5
    w, b = _torch_linear_run(X, labels, solver, 10, 5, lr, 1.0 / (C * N), "log",
                             **params)
    clf = fastgd.LogisticRegression(solver=solver, C=C, batch_size=10,
                                    learning_rate_init=lr, shuffle=False, max_iter=5,
                                    tol=0.0, random_state=0, **params)
    with pytest.warns(Warning):
        clf.fit(X, labels)
    assert_allclose(clf.coef_.ravel(), w, rtol=1e-6)
    assert_allclose(clf.intercept_, b, rtol=1e-6)


@pytest.mark.parametrize("solver", ["adamw", "rmsprop", "adagrad"])
def test_float32_follows_float64(solver):
    X, y = _data()
    kw = dict(hidden_layer_sizes=(H,), solver=solver, shuffle=False, random_state=0,
              max_iter=5, batch_size=10, learning_rate_init=0.01)
    if solver == "adamw":
        kw["weight_decay"] = 0.01
    with pytest.warns(Warning):
        a = fastgd.MLPRegressor(**kw).fit(X, y)
    with pytest.warns(Warning):
        b = fastgd.MLPRegressor(**kw).fit(X.astype(np.float32), y.astype(np.float32))
    assert b.coefs_[0].dtype == np.float32
    for u, v in zip(_ours(a), _ours(b)):
        assert_allclose(u, v, rtol=1e-3, atol=1e-4)


def test_partial_fit_continues_the_optimizer():
    """Two partial_fit epochs equal one fit of two epochs (the state carries over)."""
    X, y = _data()
    kw = dict(hidden_layer_sizes=(H,), solver="rmsprop", shuffle=False,
              random_state=0, batch_size=10, tol=0.0, n_iter_no_change=100)
    a = fastgd.MLPRegressor(**kw)
    a.partial_fit(X, y)
    a.partial_fit(X, y)
    with pytest.warns(Warning):
        b = fastgd.MLPRegressor(max_iter=2, **kw).fit(X, y)
    for u, v in zip(_ours(a), _ours(b)):
        assert_allclose(u, v, rtol=1e-12)


def test_parameter_validation():
    X, y = _data()
    with pytest.raises(ValueError, match="weight_decay.*adamw"):
        fastgd.MLPRegressor(solver="adam", weight_decay=0.1, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="weight_decay"):
        fastgd.MLPRegressor(solver="adamw", weight_decay=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="max_grad_norm"):
        fastgd.LinearRegression(solver="sgd", max_grad_norm=0.0).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        fastgd.MLPRegressor(solver="adamax").fit(X, y)


def test_clipping_and_solvers_with_sliced_batches_match_torch():
    """Batches large enough to be split in row slices (private gradients summed
    before the norm is taken): adamw with clipping, 10 epochs of 2 batches."""
    from fastgd import _threads
    rng = np.random.RandomState(5)
    X = rng.normal(size=(1000, 50))
    y = 3 * np.tanh(X[:, :5].sum(axis=1)) + 0.1 * rng.normal(size=1000)
    assert _threads.slices_for(np.array([50, 64, 1]), 500) > 1
    params = dict(weight_decay=0.05)
    ref = _torch_mlp_run(X, y, "adamw", 500, 10, 0.01, 1e-3, max_grad_norm=0.2,
                         hidden=64, **params)
    est = fastgd.MLPRegressor(hidden_layer_sizes=(64,), activation="tanh",
                              solver="adamw", alpha=1e-3, batch_size=500,
                              learning_rate_init=0.01, shuffle=False, random_state=0,
                              max_grad_norm=0.2, **params)
    for epoch in range(10):
        est.partial_fit(X, y)
        for a, b in zip(_ours(est), ref[epoch]):
            assert_allclose(a, b, rtol=1e-6, atol=1e-12, err_msg=f"epoch {epoch}")


@pytest.mark.parametrize("solver", ["adamw", "adagrad"])
def test_sparse_input_equals_dense(solver):
    """CSR rows (the first layer's gradient kept zero outside a batch's features)
    clip and step as the dense fit does."""
    import scipy.sparse as sp
    rng = np.random.RandomState(6)
    X = rng.normal(size=(200, 30)) * (rng.rand(200, 30) < 0.2)
    y = X @ rng.normal(size=30)
    kw = dict(hidden_layer_sizes=(8,), solver=solver, shuffle=True, random_state=0,
              max_iter=4, batch_size=20, max_grad_norm=0.5, alpha=1e-3)
    if solver == "adamw":
        kw["weight_decay"] = 0.1
    with pytest.warns(Warning):
        a = fastgd.MLPRegressor(**kw).fit(X, y)
    with pytest.warns(Warning):
        b = fastgd.MLPRegressor(**kw).fit(sp.csr_matrix(X), y)
    for u, v in zip(_ours(a), _ours(b)):
        assert_allclose(u, v, rtol=1e-10, atol=1e-13)

