"""bfloat16 products (fastgd/_bf16_gemm.h through fastgd._bf16): rounding, every path
and product shape against numpy products of the rounded inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest

bf16 = pytest.importorskip("fastgd._bf16", reason="fastgd._bf16 not built (needs x86-64 "
                           "and a compiler with AMX / AVX512-BF16 intrinsics)")

EPS32 = np.finfo(np.float32).eps
PATHS = ["amx", "avx512bf16", "float32", "amx_emulated"]


def need(path):
    if path != "amx_emulated" and path not in bf16.available_paths():
        pytest.skip(f"this CPU lacks the {path} path (has {bf16.available_paths()})")


# ---- rounding ----------------------------------------------------------------------

def _bits_value(bits):
    """Exact value (float64) of float32 bit patterns, exponent 255 read as 2**128
    (the 'next value' past the largest finite number)."""
    bits = bits.astype(np.int64)
    sign = np.where(bits >> 31, -1.0, 1.0)
    e, mant = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    return sign * np.ldexp(mant / 2.0**23 + (e > 0), np.maximum(e, 1) - 127)


def reference_bf16(x):
    """Round to nearest even by comparing distances to the two neighbours, in float64."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    lo = bits & 0xFFFF0000          # toward zero
    hi = lo + 0x10000               # away from zero (may reach inf)
    xv = _bits_value(bits)
    d_lo, d_hi = np.abs(xv - _bits_value(lo)), np.abs(_bits_value(hi) - xv)
    up = (d_hi < d_lo) | ((d_hi == d_lo) & ((lo >> 16) & 1 == 1))
    out = np.where(up, hi, lo) >> 16
    absb = bits & 0x7FFFFFFF
    out = np.where(absb == 0x7F800000, bits >> 16, out)                # inf stays inf
    out = np.where(absb > 0x7F800000, (bits >> 16) | 0x40, out)        # quiet NaN
    return out.astype(np.uint16)


def special_floats():
    pats = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000,      # zeros, infs
            0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,      # NaNs, low payloads
            0x7FBFFFFF, 0x7F80FFFF, 0x7FFFFFFF,
            0x00000001, 0x807FFFFF, 0x00008000, 0x00018000,      # denormals, ties
            0x00007FFF, 0x0000FFFF, 0x007F8000, 0x007FFFFF,      # denormal -> normal
            0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF,      # ties to even / not ties
            0xBF808000, 0xBF818000,
            0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF, 0xFF7F8000]      # round to max / to inf
    return np.array(pats, dtype=np.uint32).view(np.float32)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 1000])
def test_round_matches_reference(n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    got, want = bf16.round_to_bf16(x), reference_bf16(x)
    assert got.dtype == np.uint16 and got.shape == x.shape
    np.testing.assert_array_equal(got, want)


def test_round_special_values():
    x = special_floats()
    got = bf16.round_to_bf16(x)
    np.testing.assert_array_equal(got, reference_bf16(x))
    # ... at every position of a vector, not only in the scalar tail
    for shift in range(17):
        y = np.roll(np.resize(x, 48), shift)
        np.testing.assert_array_equal(bf16.round_to_bf16(y), reference_bf16(y))
    back = bf16.bf16_to_float32(got)
    assert np.all(np.isnan(back) == np.isnan(x))
    nan = np.isnan(x)
    assert np.all((got[nan] & 0x40) != 0)                       # quiet
    assert np.all((got[nan] >> 15) == (x[nan].view(np.uint32) >> 31))   # sign kept
    assert np.array_equal(back[~nan][np.isinf(x[~nan])], x[~nan][np.isinf(x[~nan])])


def test_round_ties_and_exact():
    # exact bfloat16 values are unchanged; halfway values go to the even neighbour
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**16, size=4096, dtype=np.uint32).astype(np.uint16)
    h = h[(h & 0x7F80) != 0x7F80]                        # finite only
    x = bf16.bf16_to_float32(h)
    np.testing.assert_array_equal(bf16.round_to_bf16(x), h)
    tie = (h.astype(np.uint32) << 16 | 0x8000).view(np.float32)
    want = np.where(h & 1, h + 1, h).astype(np.uint16)   # odd rounds away, even stays
    np.testing.assert_array_equal(bf16.round_to_bf16(tie), want)


def test_round_keeps_shape():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert bf16.round_to_bf16(x).shape == (3, 4)
    assert bf16.round_to_bf16(np.zeros(0, np.float32)).shape == (0,)


# ---- products ----------------------------------------------------------------------

def rounded(x):
    return bf16.bf16_to_float32(bf16.round_to_bf16(x))


def check_product(c, a, b, trans_a, trans_b, c0=None):
    """c against numpy float32 op(A) @ op(B) of the rounded inputs. The products of two
    bfloat16 numbers are exact in float32, so the two results differ only in the order
    of their float32 sums: each is within k * eps * (|A| @ |B|) of the exact sum."""
    ar, br = rounded(a), rounded(b)
    ar = ar.T if trans_a else ar
    br = br.T if trans_b else br
    want = ar @ br
    k = ar.shape[1]
    bound = 2 * (k + 1) * EPS32 * (np.abs(ar) @ np.abs(br))
    if c0 is not None:
        want = want + c0
        bound = bound + 2 * EPS32 * np.abs(want)
    diff = np.abs(c.astype(np.float64) - want)
    assert c.dtype == np.float32 and c.shape == want.shape
    assert np.all(diff <= bound + 1e-30), float(np.max(diff - bound))


SHAPES = [(1, 1, 1), (15, 17, 33), (17, 33, 15), (33, 15, 17), (1, 100, 784),
          (100, 17, 1024), (33, 1024, 100), (784, 33, 17), (65, 70, 64)]
BIG = [(200, 512, 784), (1024, 100, 784)]


def operands(m, n, k, trans_a, trans_b, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    return a, b


# forward A @ B, input gradient A @ B^T, weight gradient A^T @ B
KINDS = [(False, False), (False, True), (True, False)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("trans_a,trans_b", KINDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_matmul(path, trans_a, trans_b, m, n, k):
    need(path)
    a, b = operands(m, n, k, trans_a, trans_b, m * n + k)
    check_product(bf16.matmul(a, b, trans_a, trans_b, path=path), a, b, trans_a, trans_b)


@pytest.mark.parametrize("path", ["amx", "avx512bf16", "float32"])
@pytest.mark.parametrize("trans_a,trans_b", KINDS)
@pytest.mark.parametrize("m,n,k", BIG)
def test_matmul_layer_sizes(path, trans_a, trans_b, m, n, k):
    need(path)
    a, b = operands(m, n, k, trans_a, trans_b, 1)
    check_product(bf16.matmul(a, b, trans_a, trans_b, path=path), a, b, trans_a, trans_b)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("trans_a,trans_b", KINDS)
def test_matmul_accumulate(path, trans_a, trans_b):
    need(path)
    m, n, k = 37, 50, 70
    a, b = operands(m, n, k, trans_a, trans_b, 3)
    c0 = np.random.default_rng(4).standard_normal((m, n), dtype=np.float32)
    out = c0.copy()
    res = bf16.matmul(a, b, trans_a, trans_b, path=path, out=out, beta=1)
    assert res is out
    check_product(out, a, b, trans_a, trans_b, c0=c0)
    # beta=0 overwrites whatever out held (NaN included)
    out[...] = np.nan
    bf16.matmul(a, b, trans_a, trans_b, path=path, out=out)
    check_product(out, a, b, trans_a, trans_b)


@pytest.mark.parametrize("path", PATHS)
def test_packed_b_reused_across_row_slices(path):
    """One packed panel for every slice, and a row's result does not depend on the
    slice it is computed in (what 1-vs-2-thread identity will rest on)."""
    need(path)
    a, b = operands(101, 75, 66, False, True, 5)
    pb = bf16.pack_b(b, trans_b=True)
    whole = bf16.matmul(a, pb, path=path)
    parts = [bf16.matmul(a[s], pb, path=path) for s in (slice(0, 7), slice(7, 64), slice(64, None))]
    np.testing.assert_array_equal(np.vstack(parts), whole)
    check_product(whole, a, b, False, True)


@pytest.mark.parametrize("path", PATHS)
def test_paths_agree_on_exact_sums(path):
    """Small integers: every sum is exact in float32, so all paths give the same bits."""
    need(path)
    rng = np.random.default_rng(6)
    a = rng.integers(-8, 9, size=(45, 99)).astype(np.float32)
    b = rng.integers(-8, 9, size=(99, 70)).astype(np.float32)
    np.testing.assert_array_equal(bf16.matmul(a, b, path=path), a @ b)


def test_special_values_propagate():
    need("float32")
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 2), np.float32)
    a[0, 0], a[1, 1] = np.nan, np.inf
    c = bf16.matmul(a, b, path="float32")
    assert np.isnan(c[0]).all() and np.isposinf(c[1]).all() and (c[2] == 4).all()


def test_zero_sizes():
    for m, n, k in [(0, 3, 4), (3, 0, 4), (3, 4, 0)]:
        c = bf16.matmul(np.zeros((m, k), np.float32), np.zeros((k, n), np.float32))
        assert c.shape == (m, n) and not c.any()


def test_bad_arguments():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="float32"):
        bf16.matmul(a.astype(np.float64), a.T)
    with pytest.raises(ValueError, match="inner dimensions"):
        bf16.matmul(a, a)
    with pytest.raises(ValueError, match="not available"):
        bf16.matmul(a, a.T, path="fp8")
    with pytest.raises(ValueError, match="out"):
        bf16.matmul(a, a.T, beta=1)
    with pytest.raises(ValueError, match="out"):
        bf16.matmul(a, a.T, out=np.zeros((4, 4), np.float32))


# ---- path choice -------------------------------------------------------------------

def _path_in_subprocess(value):
    # the extension alone (importing the fastgd package would cost seconds)
    code = ("import importlib.util as u; s = u.spec_from_file_location('fastgd._bf16', "
            f"{bf16.__file__!r}); b = u.module_from_spec(s); s.loader.exec_module(b); "
            "print(b.bf16_path())")
    env = dict(os.environ, FASTGD_BF16_PATH=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_default_path_is_the_best_available():
    assert bf16.available_paths()[-1] == "float32"
    if "FASTGD_BF16_PATH" not in os.environ:
        assert bf16.bf16_path() == bf16.available_paths()[0]


@pytest.mark.parametrize("path", ["amx", "avx512bf16", "float32"])
def test_environment_forces_path(path):
    need(path)
    run = _path_in_subprocess(path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == path


def test_environment_rejects_unavailable_path():
    run = _path_in_subprocess("no-such-path")
    assert run.returncode != 0 and "FASTGD_BF16_PATH" in run.stderr
