"""Fit the polynomial behind fgd_normal_cdf (fastgd/_vmath.h).

For z >= 0 and t = 2 / (2 + z) in (0, 1], erfc(z) = t exp(-z^2 + P(t)) with P smooth
on [0, 1]: f(t) = log(erfc(z) / t) + z^2 is fitted by least squares on Chebyshev
nodes against mpmath's erfc at 50 digits, and the fitted coefficients (monomial
basis, for Horner's rule) are printed with the worst relative error of erfc in
double. Run: python tools/fit_erfc_polynomial.py [degree]
"""
import sys

import mpmath
import numpy as np

mpmath.mp.dps = 50
degree = int(sys.argv[1]) if len(sys.argv) > 1 else 24
# t below 2 / 29 (z > 27): erfc(z) < 1e-318, flushed to 0 anyway.
lo, hi = 2.0 / 29.0, 1.0
nodes = 4 * degree
k = np.arange(nodes)
t = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / nodes)


def f_exact(tt):
    z = mpmath.mpf(2) / tt - 2
    return float(mpmath.log(mpmath.erfc(z) / tt) + z * z)


f = np.array([f_exact(mpmath.mpf(x)) for x in t])
# Fit in the Chebyshev basis of [lo, hi] (well conditioned), then convert to the
# monomial basis of x = (2 t - lo - hi) / (hi - lo) in [-1, 1]: small coefficients.
cheb = np.polynomial.Chebyshev.fit(t, f, degree, domain=[lo, hi])
coefs = np.polynomial.chebyshev.cheb2poly(cheb.coef)

z = np.concatenate([np.linspace(0, 27, 2001), np.geomspace(1e-8, 1, 50)])
tt = 2.0 / (2.0 + z)
x = (2 * tt - (lo + hi)) / (hi - lo)
p = np.zeros_like(tt)
for c in coefs[::-1]:
    p = p * x + c
approx = tt * np.exp(-z * z + p)
exact = np.array([float(mpmath.erfc(mpmath.mpf(v))) for v in z])
rel = np.abs(approx - exact) / exact
for a, b in [(0, 3.5), (3.5, 27)]:
    print(f"degree {degree}, {a} <= z <= {b}: max relative error of erfc "
          f"{rel[(z >= a) & (z <= b)].max():.3g}")
print(f"x = t * {2 / (hi - lo)!r} - {(lo + hi) / (hi - lo)!r}")
for c in coefs[::-1]:
    print(f"    p = p * x + {float(c)!r};")
