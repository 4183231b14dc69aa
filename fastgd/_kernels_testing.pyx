# cython: language_level=3
"""The kernels plus test-only entry points into their internals.

Built only with ``FASTGD_TEST_KERNELS=1`` (setup.py; ``build_inplace.sh`` and
``.ci/run`` set it), so the production build carries none of this. The tests call
these to check the element-wise pieces, the small products and the optimizer
update, the activations' derivatives and the dropout masks against numpy
(``tests/conftest.py``: ``testing_kernels``).
"""

include "_kernels.pyx"


def _product_depth(str trans_a, str trans_b, a_shape, b_shape, Py_ssize_t m,
                   Py_ssize_t n):
    """k of c (m x n) := op(a) @ op(b), after checking that the shapes match."""
    k = a_shape[1] if trans_a == "N" else a_shape[0]
    if ((a_shape[0] if trans_a == "N" else a_shape[1]) != m
            or (b_shape[0] if trans_b == "N" else b_shape[1]) != k
            or (b_shape[1] if trans_b == "N" else b_shape[0]) != n):
        raise ValueError("shapes do not match")
    return k


def small_matmul(str trans_a, str trans_b, const floating[:, ::1] a,
                 const floating[:, ::1] b, floating[:, ::1] c, bint accumulate):
    """c := op(a) @ op(b) (+ c) through fastgd/_small_gemm.h (for testing it against
    numpy; shapes are checked here)."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = _product_depth(trans_a, trans_b, a.shape, b.shape, m, n)
    if (n + 8) * k > SMALL_GEMM_SCRATCH or min(m, n, k) < 1:
        raise ValueError("too large for the scratch buffer, or empty")
    _small_gemm(ord(trans_a), ord(trans_b), m, n, k, &a[0, 0], a.shape[1], &b[0, 0],
                b.shape[1], accumulate, &c[0, 0], c.shape[1])


def packed_matmul(str trans_a, str trans_b, const floating[:, ::1] a,
                  const floating[:, ::1] b, floating[:, :] c, bint accumulate):
    """c := op(a) @ op(b) (+ c) through fastgd/_packed_gemm.h: op(b) packed, then the
    product (for testing against numpy; c may be a view with a wider row stride)."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = _product_depth(trans_a, trans_b, a.shape, b.shape, m, n)
    if c.shape[0] * c.shape[1] and c.strides[1] != sizeof(floating):
        raise ValueError("c's rows must be contiguous")
    cdef floating[::1] packed = np.empty(
        max(1, fgd_packed_s_packed_b_size(k, n) if floating is float
            else fgd_packed_d_packed_b_size(k, n)), dtype=np.asarray(c).dtype)
    cdef const floating *pa = &a[0, 0] if a.shape[0] * a.shape[1] else NULL
    cdef const floating *pb = &b[0, 0] if b.shape[0] * b.shape[1] else NULL
    cdef floating *pc = &c[0, 0] if m * n else NULL
    if floating is float:
        fgd_packed_s_pack_b(k, n, pb, b.shape[1], trans_b == "T", &packed[0])
        fgd_packed_s_gemm(m, n, k, pa, a.shape[1], trans_a == "T", &packed[0], pc,
                          c.strides[0] // sizeof(float), accumulate)
    else:
        fgd_packed_d_pack_b(k, n, pb, b.shape[1], trans_b == "T", &packed[0])
        fgd_packed_d_gemm(m, n, k, pa, a.shape[1], trans_a == "T", &packed[0], pc,
                          c.strides[0] // sizeof(double), accumulate)


def adam_update(floating[::1] w, const floating[::1] raw, floating[::1] m,
                floating[::1] s, double alpha, double weight_sum, double beta_1,
                double beta_2, double epsilon, double rate):
    """One adam step over w in place, as training does it (for testing it against
    numpy; training never goes through here)."""
    cdef Py_ssize_t n = w.shape[0]
    if not (raw.shape[0] == m.shape[0] == s.shape[0] == n) or n == 0:
        raise ValueError("w, raw, m and s must have the same length, > 0")
    with nogil:
        _adam_range(&w[0], &raw[0], &m[0], &s[0], n, <floating> alpha,
                    <floating> weight_sum, beta_1, beta_2, <floating> epsilon,
                    <floating> rate, <floating> 1)


def square_and_abs_sums(const floating[::1] w):
    """(sum w^2, sum |w|) as the penalty term sees them (for testing)."""
    cdef PenaltySums sums = _sums_of(0.0, 0.0)
    if w.shape[0]:
        sums = _square_and_abs_sums(&w[0], w.shape[0])
    return sums.sumsq, sums.sumabs


def apply_activation(floating[:, ::1] z, const floating[::1] bias, str activation):
    """z := activation(z + bias) in place: the kernels' own element-wise pass (for
    testing it against numpy; training never goes through here)."""
    if bias.shape[0] != z.shape[1]:
        raise ValueError(f"bias has {bias.shape[0]} values for {z.shape[1]} columns")
    cdef int code = ACTIVATION_CODES[activation]
    with nogil:
        _bias_activation(&z[0, 0] if z.shape[0] * z.shape[1] else NULL,
                         &bias[0] if bias.shape[0] else NULL, z.shape[0], z.shape[1], code)


def activation_derivative(const floating[::1] z, str activation):
    """activation'(z) from the pre-activations z: the kernels' own pass of the
    hidden layers that keep their inputs (for testing; training never goes through
    here)."""
    cdef int code = ACTIVATION_CODES[activation]
    if code == ACT_SOFTMAX or code == ACT_EXP:
        raise ValueError(f"{activation!r} is an output activation: the kernels never "
                         "take its derivative from its input")
    out = np.empty(z.shape[0], dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] view = out
    if z.shape[0]:
        with nogil:
            _derivative_from_input(&view[0], &z[0], z.shape[0], code)
    return out


def dropout_mask(floating[:, ::1] block, double rate, unsigned long long seed,
                 Py_ssize_t row_start, Py_ssize_t layer):
    """block *= the keep mask / (1 - rate) of hidden layer ``layer`` for rows
    row_start.. (for testing the mask; training applies it in place)."""
    if not 0 <= rate < 1:
        raise ValueError("rate must be in [0, 1)")
    cdef Model model
    model.dropout = rate
    model.dropout_seed = seed
    if block.shape[0] * block.shape[1]:
        with nogil:
            _dropout_block(&block[0, 0], block.shape[0], block.shape[1], row_start,
                           layer, &model)
