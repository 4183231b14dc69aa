"""Fit the small-|x| tanh polynomials used by fastgd/_vmath.h.

For |x| < CUT, tanh(x) = x + x^3 * P(x^2). P is fitted here by weighted least
squares on Chebyshev nodes (weights = relative error of tanh). The float64
least-squares solve alone leaves ~6 ulp in double, so the fit is refined on
its residual computed in long double (x86: 64-bit mantissa), and checked in
ulps against long double tanh on a dense grid.

    python tools/fit_tanh_polynomial.py

prints the coefficients (highest degree first, for Horner) and the worst
error of each fit in ulps.
"""
import numpy as np

CUT = 0.55


def fit(degree, n_nodes=4000, refinements=3):
    # Chebyshev nodes in u = x^2 on [0, CUT^2].
    k = np.arange(n_nodes)
    u = (CUT**2) * (1 - np.cos((k + 0.5) * np.pi / n_nodes)) / 2
    u = u.astype(np.longdouble)
    x = np.sqrt(u)
    target = (np.tanh(x) - x) / x**3
    # An error e in P is an error e * x^3 in tanh, i.e. a relative error ~ e * x^2:
    # weight by x (least squares squares it).
    weight = x
    V = np.vander(u, degree + 1, increasing=True)
    weighted_V = (V * weight[:, None]).astype(np.float64)
    coef = np.zeros(degree + 1, dtype=np.longdouble)
    for _ in range(refinements):
        residual = (target - V @ coef) * weight
        step, *_ = np.linalg.lstsq(weighted_V, residual.astype(np.float64), rcond=None)
        coef = coef + step
    return coef.astype(np.float64)


def worst_ulps(coef, dtype):
    x = np.linspace(1e-4, CUT, 200_001)
    xs = x.astype(dtype)
    u = xs * xs
    p = np.zeros_like(xs)
    for c in coef[::-1]:
        p = p * u + dtype(c)
    approx = xs + xs * u * p
    exact = np.tanh(xs.astype(np.longdouble))
    return float(np.max(np.abs(approx - exact) / np.spacing(approx).astype(np.longdouble)))


for name, dtype, degree in [("float", np.float32, 4), ("double", np.float64, 10)]:
    coef = fit(degree)
    print(f"{name} (degree {degree} in x^2): worst error {worst_ulps(coef, dtype):.2f} ulp")
    print("  " + ", ".join(repr(float(c)) for c in coef[::-1]))
