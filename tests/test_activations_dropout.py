"""The activations 'leaky_relu', 'gelu', 'silu' (against torch, numpy and finite
differences, forward and backward) and inverted dropout (mask rate, determinism,
gradient with a fixed mask)."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastgd
import conftest
from fastgd._engine import KernelData, Network, pack

NEW = ["leaky_relu", "gelu", "silu"]


def _testing():
    """The test-only kernel entry points (apply_activation, activation_derivative,
    dropout_mask): fastgd._kernels_testing, built with FASTGD_TEST_KERNELS=1."""
    return conftest.testing_kernels()


def _grid(dtype):
    z = np.concatenate([np.linspace(-40, 40, 16001), np.geomspace(1e-30, 30, 400),
                        -np.geomspace(1e-30, 30, 400), [0.0, -0.0, 0.55, -0.55]])
    return z.astype(dtype)


def _numpy_value(name, z):
    from scipy.special import erfc, expit
    z = z.astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "gelu":
        return z * 0.5 * erfc(-z / np.sqrt(2))
    return z * expit(z)


def _numpy_derivative(name, z):
    from scipy.special import erfc, expit
    z = z.astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if name == "gelu":
        return 0.5 * erfc(-z / np.sqrt(2)) + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    if name == "silu":
        s = expit(z)
        return s * (1 + z * (1 - s))
    if name == "relu":
        return (z > 0).astype(float)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "logistic":
        return expit(z) * (1 - expit(z))
    return np.ones_like(z)


def _kernel_value(name, z):
    out = z.reshape(1, -1).copy()
    _testing().apply_activation(out, np.zeros(out.shape[1], dtype=z.dtype), name)
    return out.ravel()


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 3e-6)])
def test_value_and_derivative_match_numpy(name, dtype, rtol):
    """Relative to scipy's erfc / expit in float64 (gelu through erfc: accurate in
    both tails). float32 is computed in double for gelu: within an ulp or two."""
    z = _grid(dtype)
    value = _kernel_value(name, z)
    assert value.dtype == dtype
    # results below the smallest normal number may be flushed to zero
    atol = 1e-300 if dtype == np.float64 else 1e-37
    assert_allclose(value, _numpy_value(name, z), rtol=rtol, atol=atol)
    deriv = _testing().activation_derivative(z, name)
    # float32: silu's derivative crosses zero near -2.4, where 1 + x (1 - s)
    # cancels: absolute accuracy there
    assert_allclose(deriv, _numpy_derivative(name, z), rtol=rtol,
                    atol=atol if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("name", ["identity", "relu", "tanh", "logistic"])
def test_derivative_from_input_of_the_other_activations(name):
    z = _grid(np.float64)
    assert_allclose(_testing().activation_derivative(z, name),
                    _numpy_derivative(name, z), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["softmax", "exp"])
def test_derivative_from_input_refuses_output_activations(name):
    with pytest.raises(ValueError, match="output activation"):
        _testing().activation_derivative(np.zeros(3), name)


@pytest.mark.parametrize("name", NEW)
def test_derivative_matches_finite_differences(name):
    z = np.linspace(-6, 6, 1201)
    z = z[np.abs(z) > 1e-3]  # leaky_relu's kink
    h = 1e-6
    fd = (_numpy_value(name, z + h) - _numpy_value(name, z - h)) / (2 * h)
    fd_kernel = (_kernel_value(name, z + h) - _kernel_value(name, z - h)) / (2 * h)
    deriv = _testing().activation_derivative(z, name)
    assert_allclose(deriv, fd, rtol=1e-7, atol=1e-8)
    assert_allclose(deriv, fd_kernel, rtol=1e-7, atol=1e-8)


def test_special_values():
    for name in NEW:
        out = _kernel_value(name, np.array([np.nan, np.inf]))
        assert np.isnan(out[0]) and out[1] == np.inf
    g = _kernel_value("gelu", np.array([-np.inf]))[0]  # -inf x 0, as torch: NaN
    assert g == 0 or np.isnan(g)


@pytest.mark.parametrize("name", NEW)
def test_against_torch_forward_and_backward(name):
    torch = pytest.importorskip("torch")
    fn = {"leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
          "gelu": lambda t: torch.nn.functional.gelu(t, approximate="none"),
          "silu": torch.nn.functional.silu}[name]
    # torch's gelu is 0.5 x (1 + erf(x / sqrt 2)): for x << 0 it cancels (absolute
    # error ~|x| 1e-16, 0 in the far tail), where ours follows scipy's erfc to ~1e-14
    # (test above); float32 cancels at |x| 6e-8. float32: silu's derivative near
    # its zero is absolute too.
    for dtype, rtol, atol, datol in [(np.float64, 1e-12, 1e-14, 1e-14),
                                     (np.float32, 3e-6, 1e-6, 1e-6)]:
        z = _grid(dtype)
        t = torch.tensor(z, requires_grad=True)
        value = fn(t)
        value.sum().backward()
        assert_allclose(_kernel_value(name, z), value.detach().numpy(), rtol=rtol,
                        atol=atol)
        assert_allclose(_testing().activation_derivative(z, name), t.grad.numpy(),
                        rtol=rtol, atol=datol)


def _network(activation, dropout=0.0, units=(5, 7, 6, 3), seed=0):
    rng = np.random.RandomState(seed)
    coefs = [rng.normal(scale=0.7, size=(a, b)) for a, b in zip(units[:-1], units[1:])]
    intercepts = [rng.normal(scale=0.3, size=b) for b in units[1:]]
    return Network(list(units), activation, "softmax", pack(coefs, intercepts,
                                                            np.float64),
                   dropout=dropout)


def _problem(n=40, d=5, k=3, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    Y = np.eye(k)[rng.randint(k, size=n)]
    return KernelData(X, np.float64, Y)


def _fd_check(network, data, seed=None, alpha=0.01):
    loss = network.loss_gradient(data, "log_loss", alpha, dropout_seed=seed)
    grad = network.grads.copy()
    base = network.params.copy()
    h = 1e-6
    fd = np.empty_like(base)
    for k in range(base.size):
        network.params[:] = base
        network.params[k] += h
        up = network.loss_gradient(data, "log_loss", alpha, dropout_seed=seed)
        network.params[k] -= 2 * h
        down = network.loss_gradient(data, "log_loss", alpha, dropout_seed=seed)
        fd[k] = (up - down) / (2 * h)
    network.params[:] = base
    assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
    return loss, grad


@pytest.mark.parametrize("name", NEW)
def test_network_gradient_finite_differences_and_torch(name):
    """Two hidden layers: the backward pass through the kept pre-activations."""
    network, data = _network(name), _problem()
    loss, grad = _fd_check(network, data)
    torch = pytest.importorskip("torch")
    fn = {"leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
          "gelu": lambda t: torch.nn.functional.gelu(t), "silu": torch.nn.functional.silu}[name]
    coefs, intercepts = network.views()
    W = [torch.tensor(c, requires_grad=True) for c in coefs]
    b = [torch.tensor(c, requires_grad=True) for c in intercepts]
    h = torch.tensor(data.X)
    for layer in range(3):
        h = h @ W[layer] + b[layer]
        h = fn(h) if layer < 2 else torch.softmax(h, dim=1)
    n = data.n_samples
    ref = -(torch.tensor(data.Y) * torch.log(h)).sum() / n
    ref = ref + 0.5 * 0.01 * sum((w ** 2).sum() for w in W) / n
    ref.backward()
    assert_allclose(loss, ref.item(), rtol=1e-12)
    assert_allclose(grad, np.concatenate([t.grad.numpy().ravel() for t in W + b]),
                    rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", NEW)
def test_mlp_fit_matches_torch_sgd(name):
    """A whole fit (plain SGD, 3 epochs of 4 batches) against torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(48, 3)), rng.normal(size=48)
    est = fastgd.MLPRegressor(hidden_layer_sizes=(6,), activation=name, solver="sgd",
                              momentum=0.0, learning_rate_init=0.05, batch_size=12,
                              alpha=0.0, shuffle=False, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    rs = np.random.RandomState(0)
    params = []
    for fan_in, fan_out in [(3, 6), (6, 1)]:
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        params += [rs.uniform(-bound, bound, (fan_in, fan_out)),
                   rs.uniform(-bound, bound, fan_out)]
    W1, b1, W2, b2 = [torch.tensor(p, requires_grad=True) for p in params]
    fn = {"leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
          "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu}[name]
    opt = torch.optim.SGD([W1, W2, b1, b2], lr=0.05)
    Xt, yt = torch.tensor(X), torch.tensor(y).reshape(-1, 1)
    for _ in range(3):
        for s in range(0, 48, 12):
            out = fn(Xt[s:s + 12] @ W1 + b1) @ W2 + b2
            loss = 0.5 * ((yt[s:s + 12] - out) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert_allclose(est.coefs_[0], W1.detach().numpy(), rtol=1e-9)
    assert_allclose(est.intercepts_[1], b2.detach().numpy(), rtol=1e-9)


@pytest.mark.parametrize("name", NEW)
def test_export_refuses_new_activations(name):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 3)), rng.randint(2, size=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastgd.MLPClassifier(hidden_layer_sizes=(4,), activation=name,
                                   max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=f"activation='{name}'"):
        clf.to_sklearn()


# ---------------------------------------------------------------------- dropout
def test_dropout_mask_rate_and_keying():
    ones = np.ones((400, 500))
    for rate in (0.1, 0.5, 0.9):
        block = ones.copy()
        _testing().dropout_mask(block, rate, 12345, 0, 1)
        dropped = (block == 0).mean()
        # binomial with 2e5 draws: 5 standard deviations
        assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / block.size)
        assert_array_equal(np.unique(block), [0.0, 1.0 / (1.0 - rate)])
        # no structure by row or by unit
        assert np.abs((block == 0).mean(axis=0) - rate).max() < 0.12
        assert np.abs((block == 0).mean(axis=1) - rate).max() < 0.12
    base = ones.copy()
    _testing().dropout_mask(base, 0.5, 7, 0, 1)
    again = ones.copy()
    _testing().dropout_mask(again, 0.5, 7, 0, 1)
    assert_array_equal(base, again)
    # rows are keyed by position: a block starting at row 100 is rows 100.. of base
    part = ones[:50].copy()
    _testing().dropout_mask(part, 0.5, 7, 100, 1)
    assert_array_equal(part, base[100:150])
    for seed, start, layer in [(8, 0, 1), (7, 1, 1), (7, 0, 2)]:
        other = ones.copy()
        _testing().dropout_mask(other, 0.5, seed, start, layer)
        assert 0.4 < (other != base).mean() < 0.6
    f32 = np.ones((400, 500), dtype=np.float32)
    _testing().dropout_mask(f32, 0.5, 7, 0, 1)
    assert_array_equal(f32 == 0, base == 0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_dropout_gradient_finite_differences_fixed_mask(activation):
    network, data = _network(activation, dropout=0.4), _problem()
    loss, grad = _fd_check(network, data, seed=99)
    # a numpy reference with the same masks
    coefs, intercepts = network.views()
    h = data.X
    for layer in range(3):
        z = h @ coefs[layer] + intercepts[layer]
        if layer < 2:
            h = {"relu": np.maximum(z, 0), "tanh": np.tanh(z),
                 "gelu": _numpy_value("gelu", z)}[activation]
            _testing().dropout_mask(h, 0.4, 99, 0, layer + 1)
        else:
            h = np.exp(z - z.max(axis=1, keepdims=True))
            h /= h.sum(axis=1, keepdims=True)
    ref = -(data.Y * np.log(h)).sum() / data.n_samples
    ref += 0.5 * 0.01 * sum((c ** 2).sum() for c in coefs) / data.n_samples
    assert_allclose(loss, ref, rtol=1e-12)
    # the masks matter: another seed gives another loss and gradient
    other = network.loss_gradient(data, "log_loss", 0.01, dropout_seed=100)
    assert abs(other - loss) > 1e-6
    without = network.loss_gradient(data, "log_loss", 0.01)
    assert abs(without - loss) > 1e-6


def _fit_dropout(**params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(20, 10), dropout=0.3, max_iter=8, random_state=0,
              batch_size=32)
    kw.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastgd.MLPClassifier(**kw).fit(X, y), X


def test_dropout_reruns_bit_identical_and_predictions_deterministic():
    a, X = _fit_dropout()
    b, _ = _fit_dropout()
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_
    assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    # predict uses no dropout: the same weights without it predict the same
    p = a.predict_proba(X)
    a.set_params(dropout=0.0)
    assert_array_equal(a.predict_proba(X), p)
    c, _ = _fit_dropout(random_state=1)
    d, _ = _fit_dropout(dropout=0.0)
    assert not np.array_equal(a.coefs_[0], d.coefs_[0])
    assert c.loss_curve_ != a.loss_curve_
    # float32 and the other solvers run too
    e, _ = _fit_dropout(solver="adamw", weight_decay=0.01)
    f, _ = _fit_dropout()
    assert np.isfinite(e.loss_)


def test_dropout_large_batches_threads_do_not_change_the_result():
    """Masks are keyed by row position: a batch split between threads (row slices)
    gets the same masks, so any thread count gives the same model."""
    from threadpoolctl import threadpool_limits
    a, X = _fit_dropout(batch_size=300, hidden_layer_sizes=(64,), max_iter=3)
    with threadpool_limits(limits=1):
        b, _ = _fit_dropout(batch_size=300, hidden_layer_sizes=(64,), max_iter=3)
    for u, v in zip(a.coefs_, b.coefs_):
        assert_array_equal(u, v)


def test_dropout_validation_and_export():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 3)), rng.randint(2, size=30)
    with pytest.raises(ValueError, match="dropout > 0 needs a mini-batch solver"):
        fastgd.MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        fastgd.MLPClassifier(dropout=1.0).fit(X, y)
    clf, X = _fit_dropout()
    with pytest.warns(UserWarning, match="dropout=0.3"):
        sk = clf.to_sklearn()
    assert_allclose(sk.predict_proba(X), clf.predict_proba(X), rtol=1e-12)
