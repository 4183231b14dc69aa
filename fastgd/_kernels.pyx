# cython: language_level=3
"""Compiled training kernels of fastgd.

One engine for any dense network ``units[0] -> units[1] -> ... -> units[L]``
(L >= 1 weight layers, so 0 or more hidden layers). Parameters live in ONE flat
buffer laid out as scikit-learn's ``_pack`` does: every layer's coefficient matrix
(row-major, fan_in x fan_out), then every layer's intercept vector. The gradient
buffer has the same layout.

All arrays are row-major (C order) - but X may be column-major (F order, as a
pandas DataFrame's values), whose rows are gathered by a strided copy. BLAS is column-major, so the row-major
product ``C = op(A) @ op(B)`` is computed as ``C^T = op(B)^T @ op(A)^T``; that
swap lives in ``_gemm`` alone.

The kernels trust their inputs: every shape, dtype and index is checked by the
Python caller (``fastgd._engine``) before the call.
"""

from cython cimport floating
from libc.math cimport log, sqrt, sqrtf, fabs
from libc.string cimport memcpy, memset
from libc.stdint cimport uint16_t
from libc.stdlib cimport calloc, malloc, free
from libc.float cimport DBL_EPSILON, FLT_EPSILON

cdef extern from *:
    """
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static int fastgd_cpu_has_avx2_fma(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    #else
    static int fastgd_cpu_has_avx2_fma(void) { return 0; }
    #endif
    #if defined(__AVX2__) && defined(__FMA__)
    #define FASTGD_BUILT_FOR_AVX2 1
    #else
    #define FASTGD_BUILT_FOR_AVX2 0
    #endif
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTGD_HAS_OPENMP 1
    static int fastgd_max_threads(void) { return omp_get_max_threads(); }
    /* Called inside a parallel block: the barrier binds to its team. */
    static void fastgd_barrier(void) {
        #pragma omp barrier
    }
    static int fastgd_team_size(void) { return omp_get_num_threads(); }
    #else
    #define FASTGD_HAS_OPENMP 0
    static int fastgd_max_threads(void) { return 1; }
    static void fastgd_barrier(void) {}
    static int fastgd_team_size(void) { return 1; }
    #endif
    """
    int FASTGD_HAS_OPENMP
    int FASTGD_BUILT_FOR_AVX2
    int fastgd_max_threads() nogil
    void fastgd_barrier() nogil
    int fastgd_team_size() nogil
    int fastgd_cpu_has_avx2_fma() nogil


def cpu_has_avx2_fma():
    """True when this CPU runs AVX2 and FMA instructions (the _kernels_avx2 build)."""
    return bool(fastgd_cpu_has_avx2_fma())


def built_for_avx2():
    """True for the module compiled with -mavx2 -mfma."""
    return bool(FASTGD_BUILT_FOR_AVX2)


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (else n_threads > 1 runs serially)."""
    return bool(FASTGD_HAS_OPENMP)


def openmp_max_threads():
    """OpenMP's current thread limit: OMP_NUM_THREADS, or what threadpoolctl or
    joblib set (1 without OpenMP)."""
    return fastgd_max_threads()


cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1
    # The same call without Cython's error check: inside a parallel block the
    # exception stays set until the block has ended and the layout is restored.
    int _check_signals_keep_error "PyErr_CheckSignals"()
    Py_ssize_t PY_SSIZE_T_MAX


cdef int _raise_pending() except -1:
    """Propagate the exception a signal handler left set (see _check_signals_keep_error)."""
    return -1
from scipy.linalg.cython_blas cimport sgemm, dgemm
from cython.parallel cimport parallel, prange, threadid

import os

import numpy as np

# The registry of activations, losses and solvers: each enum is the one list of
# them. Python sees each enum's members by name (ACT_RELU <-> "relu", see _codes);
# fastgd._engine maps scikit-learn's names through ACTIVATION_CODES, LOSS_CODES and
# SOLVER_CODES. Adding one: a member here, then its branch in the one function that
# computes it - activations: _bias_activation (value) and _activation_derivative
# (derivative through the output), or for one whose derivative is not a function of
# its output, _derivative_from_input (from the kept pre-activations) and
# _needs_preactivation; losses: _output_loss_delta; solvers: _solver_range (and
# its state in _uses_second_moment / _soft_threshold's moment in _update_range).

cpdef enum Activation:
    ACT_IDENTITY = 0
    ACT_LOGISTIC = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_SOFTMAX = 4
    ACT_EXP = 5
    ACT_LEAKY_RELU = 6    # slope 0.01 below 0, as torch's default
    ACT_GELU = 7          # exact: x Phi(x), Phi the normal CDF (torch's default)
    ACT_SILU = 8          # x sigmoid(x)

cpdef enum Loss:
    LOSS_SQUARED_ERROR = 0
    LOSS_LOG_LOSS = 1
    LOSS_BINARY_LOG_LOSS = 2
    LOSS_POISSON = 3

cpdef enum Solver:
    SOLVER_SGD = 0
    SOLVER_ADAM = 1
    SOLVER_ADAMW = 2      # torch's AdamW: decoupled weight decay, torch's epsilon
    SOLVER_RMSPROP = 3    # torch's RMSprop (alpha = beta_2), no momentum, not centered
    SOLVER_ADAGRAD = 4    # torch's Adagrad, no learning-rate decay


def _codes(enum, prefix):
    """{"relu": 3, ...} from the members ACT_RELU = 3, ... of a registry enum."""
    return {member.name[len(prefix):].lower(): int(member) for member in enum}


ACTIVATION_CODES = _codes(Activation, "ACT_")
LOSS_CODES = _codes(Loss, "LOSS_")
SOLVER_CODES = _codes(Solver, "SOLVER_")

cdef enum:
    # Check for Ctrl-C every this many mini-batches (takes the GIL for ~1 us).
    SIGNAL_CHECK_INTERVAL = 64


ctypedef struct Model:
    # Network description; built from a dict by the Python caller.
    int hidden_activation
    int output_activation
    int loss
    double alpha          # L2 penalty: alpha / 2 ||W||^2 (coefs only)
    double l1             # L1 penalty: l1 ||W||_1, by a proximal step (mini-batch only)
    bint penalty_per_batch  # divide the penalty by each batch's weight sum (MLP) or not
    bint fit_intercept    # update the intercepts (else they stay as they are)
    bint sparse           # X given as CSR arrays instead of a dense matrix
    bint has_weights      # sample_weight given
    double dropout        # inverted dropout rate of the hidden layers (training only)
    unsigned long long dropout_seed  # keys the dropout mask (see fgd_dropout_row_*)
    int matmul_path       # train_epoch only: a BF16_PATH_CODES value (bfloat16
                          # products, see Packed), or -1: float32 products


ctypedef struct Optimizer:
    int solver            # a Solver member
    double learning_rate  # sgd: current rate; the adaptive solvers: learning_rate_init
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    long long step        # the adaptive solvers' time step t before the epoch
    double weight_decay   # adamw: coefs *= 1 - learning_rate x weight_decay per step
    double max_grad_norm  # > 0: clip the whole gradient to this L2 norm (0: never)
    bint lazy_sparse      # sparse X: step only the W1 rows of the batch's features


# ---------------------------------------------------------------------------
# BLAS
# ---------------------------------------------------------------------------

cdef extern from "_small_gemm.h":
    void fgd_small_sgemm(char trans_a, char trans_b, Py_ssize_t m, Py_ssize_t n,
                         Py_ssize_t k, const float *a, Py_ssize_t lda, const float *b,
                         Py_ssize_t ldb, float *c, Py_ssize_t ldc, int accumulate,
                         float *scratch) nogil
    void fgd_small_dgemm(char trans_a, char trans_b, Py_ssize_t m, Py_ssize_t n,
                         Py_ssize_t k, const double *a, Py_ssize_t lda, const double *b,
                         Py_ssize_t ldb, double *c, Py_ssize_t ldc, int accumulate,
                         double *scratch) nogil


cdef enum:
    # Products of at most this many multiply-adds (m n k) skip BLAS: see
    # fastgd/_small_gemm.h and benchmarks/NOTES.md. The choice depends on the shape
    # only, so results stay independent of the thread count.
    SMALL_GEMM_VOLUME = 1 << 18
    SMALL_GEMM_SCRATCH = 1 << 14   # op(B) = B^T (n k) and a padded k x 8 column tail


cdef void _small_gemm(char trans_a, char trans_b, int m, int n, int k,
                      const floating *a, int lda, const floating *b, int ldb,
                      bint accumulate, floating *c, int ldc) noexcept nogil:
    cdef floating scratch[SMALL_GEMM_SCRATCH]
    if floating is float:
        fgd_small_sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate,
                        scratch)
    else:
        fgd_small_dgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate,
                        scratch)


cdef inline void _gemm(char trans_a, char trans_b, int m, int n, int k,
                       floating alpha, const floating *a, int lda,
                       const floating *b, int ldb, floating beta,
                       floating *c, int ldc) noexcept nogil:
    """Row-major C (m x n) := alpha * op(A) @ op(B) + beta * C."""
    # Only the A @ B^T products (the backward pass through a layer) skip BLAS:
    # OpenBLAS's own small-matrix kernels win for the other two shapes (batch 32,
    # 1 thread: all three through _small_gemm 56 ms per epoch, none 46, this one 44).
    if (alpha == 1 and (beta == 0 or beta == 1) and trans_b == c'T'
            and <Py_ssize_t> m * n * k <= SMALL_GEMM_VOLUME
            and <Py_ssize_t> (n + 8) * k <= SMALL_GEMM_SCRATCH):
        _small_gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta == 1, c, ldc)
        return
    # Column-major BLAS sees every row-major matrix transposed, so compute
    # C^T = op(B)^T op(A)^T: swap the operands and the m/n sizes.
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <float *> b, &ldb,
              <float *> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <double *> b, &ldb,
              <double *> a, &lda, &beta, c, &ldc)


# ---------------------------------------------------------------------------
# bfloat16 products (matmul_precision="bfloat16")
# ---------------------------------------------------------------------------

cdef extern from "_bf16_gemm.h":
    int FGD_BF16_X86
    int FGD_BF16_FLOAT32
    int FGD_BF16_AVX512BF16
    int FGD_BF16_AMX
    int FGD_BF16_AMX_EMULATED
    int fgd_bf16_has_avx512bf16
    int fgd_bf16_has_amx
    void fgd_bf16_detect()
    size_t fgd_bf16_packed_a_size(size_t m, size_t k) noexcept nogil
    size_t fgd_bf16_packed_b_size(size_t k, size_t n) noexcept nogil
    void fgd_bf16_pack_a(size_t m, size_t k, const float *a, size_t lda, int trans_a,
                         uint16_t *out) noexcept nogil
    void fgd_bf16_pack_b(size_t k, size_t n, const float *b, size_t ldb, int trans_b,
                         uint16_t *out) noexcept nogil
    void fgd_bf16_gemm_packed(int path, size_t m, size_t n, size_t k, const uint16_t *pa,
                              const uint16_t *pb, float *c, size_t ldc, int beta) noexcept nogil


fgd_bf16_detect()   # once per process: the CPU's bfloat16 units, AMX's tile permission

# The bfloat16 product units of this CPU, best first, by name -> Model.matmul_path.
# (No entry: the CPU has neither, and matmul_precision="bfloat16" falls back to
# float32 products, see fastgd._build.matmul_path.)
BF16_PATH_CODES = {name: code for name, code, ok in (
    ("amx", FGD_BF16_AMX, fgd_bf16_has_amx),
    ("avx512bf16", FGD_BF16_AVX512BF16, fgd_bf16_has_avx512bf16)) if ok}
# For tests on any x86-64 CPU, forced by FASTGD_BF16_PATH only: the same bfloat16
# arithmetic in plain C ("plain", the header's reference kernel) and the AMX loops on
# tiles emulated in C ("amx_emulated"). Both are slow.
BF16_TEST_CODES = {"plain": FGD_BF16_FLOAT32,
                   **({"amx_emulated": FGD_BF16_AMX_EMULATED} if FGD_BF16_X86 else {})}


cdef extern from "_packed_gemm.h":
    int FGD_PACKED_FAST
    size_t fgd_packed_s_packed_b_size(size_t k, size_t n) noexcept nogil
    void fgd_packed_s_pack_b(size_t k, size_t n, const float *b, size_t ldb, int trans_b,
                             float *out) noexcept nogil
    void fgd_packed_s_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda,
                            int trans_a, const float *pb, float *c, size_t ldc,
                            int accumulate) noexcept nogil
    size_t fgd_packed_d_packed_b_size(size_t k, size_t n) noexcept nogil
    void fgd_packed_d_pack_b(size_t k, size_t n, const double *b, size_t ldb, int trans_b,
                             double *out) noexcept nogil
    void fgd_packed_d_gemm(size_t m, size_t n, size_t k, const double *a, size_t lda,
                            int trans_a, const double *pb, double *c, size_t ldc,
                            int accumulate) noexcept nogil


# float32 / float64 products of training on packed operands (fastgd/_packed_gemm.h)
# instead of OpenBLAS: by default only in the build where they are faster (AVX2 + FMA);
# FASTGD_GEMM=blas (read at import) or packed_products(False) keeps OpenBLAS, for A/B
# measurements (benchmarks/gemm_ab.py).
cdef bint _packed_on = FGD_PACKED_FAST and os.environ.get("FASTGD_GEMM", "") != "blas"


def packed_products(enabled=None):
    """Whether train_epoch's float32/float64 products use the packed kernels
    (fastgd/_packed_gemm.h); ``enabled`` (not None) switches them first."""
    global _packed_on
    if enabled is not None:
        _packed_on = bool(enabled)
    return bool(_packed_on)


cdef enum:
    PACK_FLOAT = -2   # Packed.path: float32/float64 packed products (else bfloat16's)
    # Packed float products need this many multiply-adds and output columns: below,
    # OpenBLAS / _small_gemm (fewer padded columns) are as fast. From
    # PACKED_MAX_COLUMNS columns on, OpenBLAS (which packs op(A) too, worth it over
    # many column panels) measured faster: 784 -> 1024 -> 10, batch 1024, 1 thread,
    # packed 0.87x (float32) / 0.86x (float64) of OpenBLAS (benchmarks/gemm_ab.py).
    PACKED_MIN_VOLUME = 1 << 18
    PACKED_MIN_COLUMNS = 32
    PACKED_MAX_COLUMNS = 256


ctypedef struct Packed:
    # train_epoch's packed operands, in one buffer: per layer l the packed op(B)
    # panels of the forward product (W_l) and of the input gradient (W_l^T), packed
    # once per batch (_pack_weights) and read by every row slice; then one scratch
    # area per slice for its own packed operands. Elements: bfloat16 (uint16) when
    # path >= 0 (Model.matmul_path), the data's float type when path == PACK_FLOAT.
    int path
    void *buf
    Py_ssize_t *w_offset        # per layer, elements into buf: W_l (-1: none)
    Py_ssize_t *wt_offset       # per layer: W_l^T (-1: none, layer 0)
    Py_ssize_t scratch_offset   # the first slice's scratch
    Py_ssize_t scratch_size     # elements per slice


cdef inline bint _is_bf16(const Packed *pk) noexcept nogil:
    return pk != NULL and pk.path >= 0


cdef inline bint _packs(int m, int n, int k) noexcept nogil:
    """Whether a float product of this shape runs packed (the shape only, so the
    arithmetic never depends on the thread count)."""
    return (PACKED_MIN_COLUMNS <= n < PACKED_MAX_COLUMNS
            and <Py_ssize_t> m * n * k >= PACKED_MIN_VOLUME)


cdef Py_ssize_t _packed_a_size(const Packed *pk, Py_ssize_t m, Py_ssize_t k,
                               size_t item) noexcept nogil:
    if pk.path >= 0:
        return fgd_bf16_packed_a_size(m, k)
    return 0   # the float kernels read op(A) as stored


cdef Py_ssize_t _packed_b_size(const Packed *pk, Py_ssize_t k, Py_ssize_t n,
                               size_t item) noexcept nogil:
    if pk.path >= 0:
        return fgd_bf16_packed_b_size(k, n)
    if item == sizeof(float):
        return fgd_packed_s_packed_b_size(k, n)
    return fgd_packed_d_packed_b_size(k, n)


cdef Py_ssize_t _packed_layout(Packed *pk, const Layout *lay, Py_ssize_t[::1] offsets,
                               bint sparse, int n_slices, size_t item) noexcept:
    """Fill pk's offsets (into ``offsets``, 2 x n_layers values owned by the caller)
    for lay.capacity rows per slice (pk.path set, ``item`` bytes per float); return
    the elements of buf. Float products pack only the weights of products that can
    run packed (_packs)."""
    cdef Py_ssize_t l, n_in, n_out, cap = lay.capacity, pos = 0, need
    cdef bint bf = pk.path >= 0
    pk.w_offset = &offsets[0]
    pk.wt_offset = &offsets[lay.n_layers]
    pk.scratch_size = 0
    for l in range(lay.n_layers):
        n_in = lay.units[l]
        n_out = lay.units[l + 1]
        pk.w_offset[l] = -1
        pk.wt_offset[l] = -1
        if not (l == 0 and sparse):
            if bf or _packs(cap, n_out, n_in):
                pk.w_offset[l] = pos
                pos += _packed_b_size(pk, n_in, n_out, item)
            # forward: the slice's acts; weight gradient: acts^T and the delta rows
            need = max(_packed_a_size(pk, cap, n_in, item),
                       _packed_a_size(pk, n_in, cap, item)
                       + _packed_b_size(pk, cap, n_out, item))
            pk.scratch_size = max(pk.scratch_size, need)
        if l > 0 and (bf or _packs(cap, n_in, n_out)):
            pk.wt_offset[l] = pos
            pos += _packed_b_size(pk, n_out, n_in, item)
            pk.scratch_size = max(pk.scratch_size, _packed_a_size(pk, cap, n_out, item))
    pk.scratch_offset = pos
    return pos + n_slices * pk.scratch_size


cdef void _pack_weights(const Packed *pk, const Layout *lay,
                        const floating *params) noexcept nogil:
    """Pack every layer's W_l and W_l^T (the current weights; rounded to bfloat16
    on that path) into pk.buf, where pk's offsets say."""
    cdef Py_ssize_t l, n_in, n_out
    cdef const floating *w
    for l in range(lay.n_layers):
        n_in = lay.units[l]
        n_out = lay.units[l + 1]
        w = params + lay.coef_offset[l]
        if pk.w_offset[l] >= 0:
            _pack_b(pk, n_in, n_out, w, n_out, False, _at(pk, pk.w_offset[l], w))
        if pk.wt_offset[l] >= 0:
            _pack_b(pk, n_out, n_in, w, n_out, True, _at(pk, pk.wt_offset[l], w))


cdef inline void *_at(const Packed *pk, Py_ssize_t offset,
                      const floating *like) noexcept nogil:
    """The address of element ``offset`` of pk.buf (elements: see Packed)."""
    if pk.path >= 0:
        return <uint16_t *> pk.buf + offset
    return <floating *> pk.buf + offset


cdef inline const void *_weights(const Packed *pk, bint transposed, Py_ssize_t l,
                                const floating *like) noexcept nogil:
    """Layer l's packed W_l (or W_l^T when ``transposed``), or NULL (none, or no pk)."""
    cdef Py_ssize_t offset
    if pk == NULL:
        return NULL
    offset = pk.wt_offset[l] if transposed else pk.w_offset[l]
    return _at(pk, offset, like) if offset >= 0 else NULL


cdef void _pack_b(const Packed *pk, Py_ssize_t k, Py_ssize_t n, const floating *b,
                  Py_ssize_t ldb, bint trans_b, void *out) noexcept nogil:
    if floating is float:
        if pk.path >= 0:
            fgd_bf16_pack_b(k, n, b, ldb, trans_b, <uint16_t *> out)
            return
        fgd_packed_s_pack_b(k, n, b, ldb, trans_b, <float *> out)
    else:
        fgd_packed_d_pack_b(k, n, b, ldb, trans_b, <double *> out)


cdef void _product(const Packed *pk, void *scratch, const void *packed_b,
                   char trans_a, char trans_b, int m, int n, int k,
                   const floating *a, int lda, const floating *b, int ldb,
                   floating beta, floating *c, int ldc) noexcept nogil:
    """Row-major C (m x n) := op(A) @ op(B) + beta * C (beta 0 or 1), the products
    of training.

    pk NULL: float32 (float64) products, _gemm. pk.path >= 0 (float only): op(A) and
    op(B) are rounded to bfloat16 and the products summed in float32. PACK_FLOAT:
    the packed float kernels when _packs says so (else _gemm). bfloat16 packs op(A)
    into ``scratch`` (the float kernels read it as stored), then op(B) too unless
    ``packed_b`` holds it already (the weights).
    """
    cdef const void *pb = packed_b
    cdef Py_ssize_t a_size
    if pk == NULL or (pk.path < 0 and not _packs(m, n, k)):
        _gemm(trans_a, trans_b, m, n, k, <floating> 1.0, a, lda, b, ldb, beta, c, ldc)
        return
    a_size = _packed_a_size(pk, m, k, sizeof(floating))
    if floating is float:
        if pk.path >= 0:
            fgd_bf16_pack_a(m, k, a, lda, trans_a == c'T', <uint16_t *> scratch)
            if pb == NULL:
                pb = <uint16_t *> scratch + a_size
                fgd_bf16_pack_b(k, n, b, ldb, trans_b == c'T', <uint16_t *> pb)
            fgd_bf16_gemm_packed(pk.path, m, n, k, <uint16_t *> scratch,
                                 <const uint16_t *> pb, c, ldc, beta == 1)
            return
        if pb == NULL:
            pb = scratch
            fgd_packed_s_pack_b(k, n, b, ldb, trans_b == c'T', <float *> scratch)
        fgd_packed_s_gemm(m, n, k, a, lda, trans_a == c'T', <const float *> pb, c, ldc,
                          beta == 1)
    else:
        if pb == NULL:
            pb = scratch
            fgd_packed_d_pack_b(k, n, b, ldb, trans_b == c'T', <double *> scratch)
        fgd_packed_d_gemm(m, n, k, a, lda, trans_a == c'T', <const double *> pb, c, ldc,
                          beta == 1)


# ---------------------------------------------------------------------------
# Element-wise pieces
# ---------------------------------------------------------------------------

cdef extern from "_vmath.h":
    # Branch-free exp/tanh (see the header): loops calling them vectorise, where
    # libm's calls are scalar. float32 stays in single precision throughout.
    float fgd_expf(float x) nogil
    double fgd_exp(double x) nogil
    float fgd_tanhf(float x) nogil
    double fgd_tanh(double x) nogil
    double fgd_square_and_abs_sums_f(const float *w, Py_ssize_t n, double *sum_abs) nogil
    double fgd_square_and_abs_sums_d(const double *w, Py_ssize_t n, double *sum_abs) nogil
    int fgd_all_finite_f(const float *x, Py_ssize_t n) nogil
    int fgd_all_finite_d(const double *x, Py_ssize_t n) nogil
    float fgd_geluf(float x) nogil
    double fgd_gelu(double x) nogil
    float fgd_gelu_derivativef(float x) nogil
    double fgd_gelu_derivative(double x) nogil
    float fgd_siluf(float x) nogil
    double fgd_silu(double x) nogil
    float fgd_silu_derivativef(float x) nogil
    double fgd_silu_derivative(double x) nogil
    void fgd_dropout_row_f(float *row, Py_ssize_t n, unsigned long long seed,
                           unsigned long long r, unsigned long long layer,
                           unsigned long long threshold, float scale) nogil
    void fgd_dropout_row_d(double *row, Py_ssize_t n, unsigned long long seed,
                           unsigned long long r, unsigned long long layer,
                           unsigned long long threshold, double scale) nogil
    void fgd_adam_f(float *w, const float *raw, float *m, float *s, Py_ssize_t n,
                    float alpha, float weight_sum, float beta_1, float one_minus_b1,
                    float beta_2, float one_minus_b2, float epsilon, float rate) nogil


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return fgd_expf(x)
    else:
        return fgd_exp(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return fgd_tanhf(x)
    else:
        return fgd_tanh(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _gelu(floating x) noexcept nogil:
    if floating is float:
        return fgd_geluf(x)
    else:
        return fgd_gelu(x)


cdef inline floating _silu(floating x) noexcept nogil:
    if floating is float:
        return fgd_siluf(x)
    else:
        return fgd_silu(x)


cdef inline floating _logistic(floating x) noexcept nogil:
    # 1 / (1 + exp(-x)) saturates cleanly at both ends (exp(-x) -> inf gives 0).
    # A typed one: Cython would write the literal 1 as 1.0 (double) and promote floats.
    cdef floating one = 1
    return one / (one + _exp(-x))


cdef void _bias_activation(floating *z, const floating *bias, Py_ssize_t n_rows,
                           Py_ssize_t n_cols, int activation) noexcept nogil:
    """z := activation(z + bias) row by row, in place (z is n_rows x n_cols); no bias
    when ``bias`` is NULL.

    Element-wise activations run over groups of rows at once, so that a narrow
    layer (one logistic output) still gives the compiler loops long enough to
    vectorise; a group stays in cache between its bias and its activation pass.
    """
    cdef Py_ssize_t i, j, size, start = 0, group = max(1, 64 // n_cols), m
    cdef floating *row
    cdef floating *part
    cdef floating row_max, total
    while start < n_rows:
        m = min(group, n_rows - start)
        part = z + start * n_cols
        size = m * n_cols
        start += m
        if bias != NULL:
            for i in range(m):
                row = part + i * n_cols
                for j in range(n_cols):
                    row[j] += bias[j]
        if activation == ACT_IDENTITY:
            pass
        elif activation == ACT_RELU:
            for j in range(size):
                # A select, not a branch (vectorises); NaN stays NaN as np.maximum.
                part[j] = 0 if part[j] < 0 else part[j]
        elif activation == ACT_TANH:
            for j in range(size):
                part[j] = _tanh(part[j])
        elif activation == ACT_LOGISTIC:
            for j in range(size):
                part[j] = _logistic(part[j])
        elif activation == ACT_EXP:
            for j in range(size):
                part[j] = _exp(part[j])
        elif activation == ACT_LEAKY_RELU:
            for j in range(size):
                part[j] = part[j] * <floating> 0.01 if part[j] < 0 else part[j]
        elif activation == ACT_GELU:
            for j in range(size):
                part[j] = _gelu(part[j])
        elif activation == ACT_SILU:
            for j in range(size):
                part[j] = _silu(part[j])
        elif activation == ACT_SOFTMAX:
            for i in range(m):
                row = part + i * n_cols
                # Subtract the row maximum so exp never overflows.
                row_max = row[0]
                for j in range(1, n_cols):
                    if row[j] > row_max:
                        row_max = row[j]
                total = 0
                for j in range(n_cols):
                    row[j] = _exp(row[j] - row_max)
                    total += row[j]
                for j in range(n_cols):
                    row[j] /= total


cdef void _activation_derivative(floating *delta, const floating *z, Py_ssize_t size,
                                 int activation) noexcept nogil:
    """delta *= activation'(.) expressed through the activation's output z."""
    cdef Py_ssize_t k
    cdef floating one = 1  # typed: a literal 1 would make float32 arithmetic double
    if activation == ACT_RELU:
        for k in range(size):
            # A select, not a branch: the sign pattern of z is random, so a branch
            # would mispredict about half the time.
            delta[k] = 0 if z[k] == 0 else delta[k]
    elif activation == ACT_TANH:
        for k in range(size):
            delta[k] *= one - z[k] * z[k]
    elif activation == ACT_LOGISTIC:
        for k in range(size):
            delta[k] *= z[k]
            delta[k] *= one - z[k]
    elif activation == ACT_LEAKY_RELU:
        for k in range(size):
            # z > 0 exactly where its input is (torch's leaky_relu_backward)
            delta[k] = delta[k] if z[k] > 0 else delta[k] * <floating> 0.01


cdef inline bint _needs_preactivation(const Model *model) noexcept nogil:
    """Whether training keeps the hidden layers' inputs z (pre-activations): their
    derivative is not a function of the output (gelu, silu), or dropout masks the
    output."""
    return (model.dropout > 0 or model.hidden_activation == ACT_GELU
            or model.hidden_activation == ACT_SILU)


cdef void _derivative_from_input(floating *out, const floating *z, Py_ssize_t size,
                                 int activation) noexcept nogil:
    """out := activation'(z) from the pre-activations z (see _needs_preactivation)."""
    cdef Py_ssize_t k
    cdef floating one = 1, t
    if activation == ACT_IDENTITY:
        for k in range(size):
            out[k] = one
    elif activation == ACT_RELU:
        for k in range(size):
            out[k] = one if z[k] > 0 else 0
    elif activation == ACT_LEAKY_RELU:
        for k in range(size):
            out[k] = one if z[k] > 0 else <floating> 0.01
    elif activation == ACT_TANH:
        for k in range(size):
            t = _tanh(z[k])
            out[k] = one - t * t
    elif activation == ACT_LOGISTIC:
        for k in range(size):
            t = _logistic(z[k])
            out[k] = t * (one - t)
    elif activation == ACT_GELU:
        for k in range(size):
            if floating is float:
                out[k] = fgd_gelu_derivativef(z[k])
            else:
                out[k] = fgd_gelu_derivative(z[k])
    elif activation == ACT_SILU:
        for k in range(size):
            if floating is float:
                out[k] = fgd_silu_derivativef(z[k])
            else:
                out[k] = fgd_silu_derivative(z[k])


cdef void _dropout_block(floating *block, Py_ssize_t n_rows, Py_ssize_t width,
                         Py_ssize_t row_start, Py_ssize_t layer,
                         const Model *model) noexcept nogil:
    """block[i, j] *= keep(row_start + i, layer, j) / (1 - dropout): the forward
    mask on a hidden layer's output, and the same factor on its derivative."""
    cdef Py_ssize_t i
    cdef unsigned long long threshold = <unsigned long long> (
        model.dropout * 9007199254740992.0)   # rate x 2^53
    cdef floating scale = <floating> (1.0 / (1.0 - model.dropout))
    for i in range(n_rows):
        if floating is float:
            fgd_dropout_row_f(block + i * width, width, model.dropout_seed,
                              row_start + i, layer, threshold, scale)
        else:
            fgd_dropout_row_d(block + i * width, width, model.dropout_seed,
                              row_start + i, layer, threshold, scale)


cdef inline double _clip_probability(double p, double eps) noexcept nogil:
    """p clipped to [eps, 1 - eps] as np.clip (NaN stays NaN). Selects, not fmax:
    GCC calls libm's fmax through the PLT, which took 87% of the loss pass."""
    p = eps if p < eps else p
    return 1 - eps if p > 1 - eps else p


cdef inline double _xlogy(double x, double y) noexcept nogil:
    """x * log(y) with 0 * log(anything) = 0, as scipy.special.xlogy."""
    if x == 0:
        return 0.0
    return x * log(y)


cdef double _output_loss_delta(floating *out, const floating *y,
                               const floating *sample_weight,
                               const Py_ssize_t *rows, Py_ssize_t row_start,
                               Py_ssize_t n_rows, Py_ssize_t n_out,
                               int loss, bint has_weights) noexcept nogil:
    """Weighted loss summed over the rows, and out := (out - y) * weight in place.

    ``out`` holds the output activations (n_rows x n_out); ``y`` and
    ``sample_weight`` are indexed through ``rows[row_start + i]`` (or directly by
    ``row_start + i`` when ``rows`` is NULL). The returned sum is not yet divided
    by the summed weight; for squared error it is already halved and averaged
    over outputs, as scikit-learn's squared_loss.

    ``out - y`` is the derivative of each canonical loss/link pair (identity +
    squared error, logistic + binary log loss, softmax + log loss, exp + Poisson)
    with respect to the pre-activation.
    """
    cdef Py_ssize_t i, j, r
    cdef double total = 0.0, row_loss, w, p, t
    cdef floating *o
    cdef const floating *yt
    # Probabilities are clipped to [eps, 1 - eps] in the loss only, as scikit-learn.
    cdef double eps = FLT_EPSILON if floating is float else DBL_EPSILON
    for i in range(n_rows):
        r = rows[row_start + i] if rows != NULL else row_start + i
        o = out + i * n_out
        yt = y + r * n_out
        w = sample_weight[r] if has_weights else 1.0
        row_loss = 0.0
        if loss == LOSS_SQUARED_ERROR:
            for j in range(n_out):
                t = <double> yt[j] - <double> o[j]
                row_loss += t * t
            row_loss *= 0.5 / n_out
        elif loss == LOSS_LOG_LOSS:
            for j in range(n_out):
                p = _clip_probability(o[j], eps)
                row_loss -= _xlogy(yt[j], p)
        elif loss == LOSS_BINARY_LOG_LOSS:
            for j in range(n_out):
                p = _clip_probability(o[j], eps)
                row_loss -= _xlogy(yt[j], p) + _xlogy(1 - yt[j], 1 - p)
        elif loss == LOSS_POISSON:
            for j in range(n_out):
                row_loss += _xlogy(yt[j], yt[j] / <double> o[j]) - yt[j] + o[j]
        total += w * row_loss
        for j in range(n_out):
            o[j] = o[j] - yt[j]
            if has_weights:
                o[j] *= <floating> w
    return total


# ---------------------------------------------------------------------------
# The network: forward, backward, update
# ---------------------------------------------------------------------------

ctypedef struct Layout:
    # Pointers into Python-owned buffers, valid for the duration of one kernel call.
    Py_ssize_t n_layers          # number of weight layers L
    const Py_ssize_t *units      # units[0..L]
    Py_ssize_t *coef_offset      # where layer l's coefs start in the flat buffer
    Py_ssize_t *intercept_offset
    Py_ssize_t n_coefs           # coefficients occupy [0, n_coefs)
    Py_ssize_t n_params
    # One thread's workspace of ``capacity`` rows (see _workspace_size): layer l's
    # activations start at act_offset[l] (l = 0: the gathered input rows) and its
    # delta at delta_offset[l] (l >= 1), both l = 0 .. L. Heap arrays owned by the
    # calling kernel, so the depth of a network has no limit.
    Py_ssize_t capacity
    Py_ssize_t *act_offset
    Py_ssize_t *delta_offset


ctypedef struct Input:
    # The rows of one data set, as raw pointers (cast to floating * where used).
    const void *x            # dense rows, or NULL when sparse
    Py_ssize_t x_col_stride  # 0: X is row-major (C order); else X is column-major
                             # (F order, as pandas' to_numpy) and this is its
                             # column stride, n_samples: rows are always gathered
    const void *x_data       # CSR arrays when sparse
    const Py_ssize_t *x_indices
    const Py_ssize_t *x_indptr
    const void *y            # targets (n_samples x n_outputs)
    const void *sample_weight  # or NULL


ctypedef struct Kernel:
    # Everything one kernel call shares, read-only, with its threads: the network's
    # layout (parameter and workspace offsets), the model, the optimizer settings,
    # the data, and how the work is cut. The buffers it updates (params, grads,
    # optimizer state, workspaces) are passed beside it, typed.
    Layout lay
    Model model
    Optimizer opt
    Input data
    const Py_ssize_t *order   # the epoch's row order (train_epoch), else NULL
    Py_ssize_t thread_work    # elements of one slice's (thread's) workspace
    Packed packed             # train_epoch: packed operands (path -1: none)
    int n_slices              # row slices or unit parts (fix the arithmetic)
    int n_threads             # threads sharing them


cdef void _gather_rows(const Input *data, const Py_ssize_t *rows, Py_ssize_t row_start,
                       Py_ssize_t n_rows, Py_ssize_t n_features,
                       floating *dest) noexcept nogil:
    """Copy the selected rows of the dense X into the row-major block dest.

    The rows are rows[row_start + i] (row_start + i when rows is NULL). A
    column-major X is read column by column (a strided gather): the block holds the
    same values as for the C-ordered X, so everything after it is bit-identical.
    """
    cdef const floating *x = <const floating *> data.x
    cdef const floating *col
    cdef Py_ssize_t i, j, r, stride = data.x_col_stride
    if stride == 0:
        for i in range(n_rows):
            r = rows[row_start + i] if rows != NULL else row_start + i
            memcpy(dest + i * n_features, x + r * n_features,
                   n_features * sizeof(floating))
        return
    for j in range(n_features):
        col = x + j * stride
        if rows == NULL:
            for i in range(n_rows):
                dest[i * n_features + j] = col[row_start + i]
        else:
            for i in range(n_rows):
                dest[i * n_features + j] = col[rows[row_start + i]]


cdef extern from *:
    void _prefetch "__builtin_prefetch"(const void *address) nogil


cdef enum:
    # Nonzeros ahead whose weight row the sparse products request early.
    _CSR_PREFETCH = 8


# Sparse (CSR) rows are never copied into a dense block: the first layer's two
# products read the nonzeros directly, so they cost nnz x width, not rows x features.
# The first layer's gradient rows of features absent from a batch stay zero, so the
# training loops keep that part of the gradient buffers zero between batches and
# clear only the rows a batch touched (_clear_csr_rows).

cdef inline void _csr_row_times_narrow(const floating *x_data,
                                      const Py_ssize_t *x_indices, Py_ssize_t begin,
                                      Py_ssize_t end, const floating *w,
                                      Py_ssize_t width, floating *orow) noexcept nogil:
    """orow := X's nonzeros [begin, end) @ w for 2 <= width <= 4, in registers
    (a vector loop of 2-4 iterations costs more than it computes)."""
    cdef floating t0 = 0, t1 = 0, t2 = 0, t3 = 0, v
    cdef const floating *wrow
    cdef Py_ssize_t p
    for p in range(begin, end):
        if p + _CSR_PREFETCH < end:
            _prefetch(w + x_indices[p + _CSR_PREFETCH] * width)
        v = x_data[p]
        wrow = w + x_indices[p] * width
        t0 = t0 + v * wrow[0]
        t1 = t1 + v * wrow[1]
        if width > 2:
            t2 = t2 + v * wrow[2]
            if width > 3:
                t3 = t3 + v * wrow[3]
    orow[0] = t0
    orow[1] = t1
    if width > 2:
        orow[2] = t2
        if width > 3:
            orow[3] = t3


cdef inline void _csr_row_scatter_narrow(const floating *x_data,
                                         const Py_ssize_t *x_indices, Py_ssize_t begin,
                                         Py_ssize_t end, const floating *drow,
                                         Py_ssize_t width, floating *g) noexcept nogil:
    """g[k, :] += x_k drow for X's nonzeros [begin, end), 2 <= width <= 4."""
    cdef floating d0 = drow[0], d1 = drow[1], d2 = 0, d3 = 0, v
    cdef floating *grow
    cdef Py_ssize_t p
    if width > 2:
        d2 = drow[2]
    if width > 3:
        d3 = drow[3]
    for p in range(begin, end):
        if p + _CSR_PREFETCH < end:
            _prefetch(g + x_indices[p + _CSR_PREFETCH] * width)
        v = x_data[p]
        grow = g + x_indices[p] * width
        grow[0] += v * d0
        grow[1] += v * d1
        if width > 2:
            grow[2] += v * d2
            if width > 3:
                grow[3] += v * d3


cdef void _csr_times_dense(const floating *x_data, const Py_ssize_t *x_indices,
                           const Py_ssize_t *x_indptr, const Py_ssize_t *rows,
                           Py_ssize_t row_start, Py_ssize_t n_rows, const floating *w,
                           Py_ssize_t width, floating *out) noexcept nogil:
    """out (n_rows x width) := X[rows] @ w, w row-major (n_features x width).

    X's rows are rows[row_start + i] (row_start + i when rows is NULL).
    """
    cdef Py_ssize_t i, r, p, j, end
    cdef floating v, total
    cdef floating *orow
    cdef const floating *wrow
    for i in range(n_rows):
        r = rows[row_start + i] if rows != NULL else row_start + i
        end = x_indptr[r + 1]
        if width == 1:
            # One output (binary or single-target linear models): a sparse dot
            # product, without the vector loop's set-up per nonzero.
            total = 0
            for p in range(x_indptr[r], end):
                total = total + x_data[p] * w[x_indices[p]]
            out[i] = total
            continue
        orow = out + i * width
        if width <= 4:
            _csr_row_times_narrow(x_data, x_indices, x_indptr[r], end, w, width, orow)
            continue
        memset(orow, 0, width * sizeof(floating))
        for p in range(x_indptr[r], end):
            if p + _CSR_PREFETCH < end:
                # W's rows are picked at random: ask for a later one's start now.
                _prefetch(w + x_indices[p + _CSR_PREFETCH] * width)
            v = x_data[p]
            wrow = w + x_indices[p] * width
            for j in range(width):
                orow[j] += v * wrow[j]


cdef void _csr_transpose_times_dense(const floating *x_data, const Py_ssize_t *x_indices,
                                     const Py_ssize_t *x_indptr, const Py_ssize_t *rows,
                                     Py_ssize_t row_start, Py_ssize_t n_rows,
                                     const floating *delta, Py_ssize_t width,
                                     floating *g) noexcept nogil:
    """g (n_features x width) += X[rows]^T @ delta (delta is n_rows x width)."""
    cdef Py_ssize_t i, r, p, j, end
    cdef floating v
    cdef floating *grow
    cdef const floating *drow
    for i in range(n_rows):
        r = rows[row_start + i] if rows != NULL else row_start + i
        end = x_indptr[r + 1]
        drow = delta + i * width
        if width == 1:
            v = drow[0]
            for p in range(x_indptr[r], end):
                g[x_indices[p]] += x_data[p] * v
            continue
        if width <= 4:
            _csr_row_scatter_narrow(x_data, x_indices, x_indptr[r], end, drow, width, g)
            continue
        for p in range(x_indptr[r], end):
            if p + _CSR_PREFETCH < end:
                _prefetch(g + x_indices[p + _CSR_PREFETCH] * width)
            v = x_data[p]
            grow = g + x_indices[p] * width
            for j in range(width):
                grow[j] += v * drow[j]


cdef void _clear_csr_rows(const Py_ssize_t *x_indices, const Py_ssize_t *x_indptr,
                          const Py_ssize_t *rows, Py_ssize_t row_start,
                          Py_ssize_t n_rows, Py_ssize_t width, floating *g) noexcept nogil:
    """g[k, :] := 0 for every feature k with a stored value in the rows."""
    cdef Py_ssize_t i, r, p, j
    cdef floating *grow
    for i in range(n_rows):
        r = rows[row_start + i] if rows != NULL else row_start + i
        for p in range(x_indptr[r], x_indptr[r + 1]):
            grow = g + x_indices[p] * width
            for j in range(width):   # narrow rows: cheaper than a memset call
                grow[j] = 0


cdef void _move_csr_rows(const Py_ssize_t *x_indices, const Py_ssize_t *x_indptr,
                         const Py_ssize_t *rows, Py_ssize_t row_start,
                         Py_ssize_t n_rows, Py_ssize_t width, floating *g,
                         floating *extra) noexcept nogil:
    """g[k, :] += extra[k, :], then extra[k, :] := 0, for every feature k of the rows.

    A slice's private gradient of the first layer is zero outside its rows'
    features, so this is the dense sum g += extra there, and it leaves extra zero.
    A feature seen twice adds zero the second time (x + 0 = x exactly).
    """
    cdef Py_ssize_t i, r, p, j
    cdef floating *grow
    cdef floating *erow
    for i in range(n_rows):
        r = rows[row_start + i] if rows != NULL else row_start + i
        for p in range(x_indptr[r], x_indptr[r + 1]):
            grow = g + x_indices[p] * width
            erow = extra + x_indices[p] * width
            for j in range(width):
                grow[j] += erow[j]
                erow[j] = 0


cdef void _prefetch_rows(const floating *y, const Py_ssize_t *rows, Py_ssize_t start,
                         Py_ssize_t stop, Py_ssize_t width) noexcept nogil:
    """Start loading rows rows[start:stop] of the row-major y (width columns).

    The targets of shuffled rows sit anywhere in Y: read in the loss pass, each row
    was a cache miss behind a branch on its values (the loss skips y = 0), which
    stalled the pass (`perf`: most of its samples on that load). Requested when the
    batch starts, they arrive during the forward pass.
    """
    cdef Py_ssize_t i, offset, size = width * sizeof(floating)
    cdef const char *row
    for i in range(start, stop):
        row = <const char *> (y + rows[i] * width)
        for offset in range(0, size, 64):
            _prefetch(row + offset)
        _prefetch(row + size - 1)


cdef void _column_sums(floating *g, const floating *d, Py_ssize_t n_rows,
                       Py_ssize_t width, bint accumulate) noexcept nogil:
    """g := (g +) the column sums of the n_rows x width block d, row by row (the
    intercept gradient of a layer from its delta)."""
    cdef Py_ssize_t i, j
    cdef const floating *row
    if not accumulate:
        memset(g, 0, width * sizeof(floating))
    for i in range(n_rows):
        row = d + i * width
        for j in range(width):
            g[j] += row[j]


cdef inline floating *_acts(const Layout *lay, floating *work, Py_ssize_t l) noexcept nogil:
    """Layer l's activations in the thread workspace ``work`` (l = 0: input rows)."""
    return work + lay.act_offset[l]


cdef inline floating *_deltas(const Layout *lay, floating *work, Py_ssize_t l) noexcept nogil:
    """Layer l's delta (l >= 1) in the thread workspace ``work``."""
    return work + lay.delta_offset[l]


cdef enum:
    # A linear model (no hidden layer) with at most this many weights is "narrow":
    # its products run as plain row loops, not GEMM calls. For n x 10 -> 1 the GEMMs
    # spent more time packing their operands than multiplying (benchmarks/NOTES.md).
    NARROW_LINEAR_WEIGHTS = 256


cdef inline bint _narrow_linear(const Layout *lay) noexcept nogil:
    """Whether the network is a narrow linear model (see NARROW_LINEAR_WEIGHTS): a
    function of its shape only, so results do not depend on the thread count."""
    return lay.n_layers == 1 and lay.units[0] * lay.units[1] <= NARROW_LINEAR_WEIGHTS


cdef void _rows_times_narrow(const floating *x, Py_ssize_t n_rows, Py_ssize_t d,
                             Py_ssize_t k, const floating *w,
                             floating *z) noexcept nogil:
    """z := x @ w for the row-major x (n_rows x d) and w (d x k), row by row: each
    entry is its products summed in feature order (one output: four rows at a time,
    so that four independent sums overlap)."""
    cdef Py_ssize_t i = 0, j, c
    cdef floating a0, a1, a2, a3, wj, xij
    cdef const floating *xi
    cdef floating *zi
    if k == 1:
        while i + 4 <= n_rows:
            xi = x + i * d
            a0 = 0
            a1 = 0
            a2 = 0
            a3 = 0
            for j in range(d):
                wj = w[j]
                a0 = a0 + xi[j] * wj
                a1 = a1 + xi[d + j] * wj
                a2 = a2 + xi[2 * d + j] * wj
                a3 = a3 + xi[3 * d + j] * wj
            z[i] = a0
            z[i + 1] = a1
            z[i + 2] = a2
            z[i + 3] = a3
            i += 4
    for i in range(i, n_rows):
        xi = x + i * d
        zi = z + i * k
        for c in range(k):
            zi[c] = 0
        for j in range(d):
            xij = xi[j]
            for c in range(k):
                zi[c] = zi[c] + xij * w[j * k + c]


cdef void _rows_transpose_times_narrow(const floating *x, Py_ssize_t n_rows,
                                       Py_ssize_t d, Py_ssize_t k,
                                       const floating *delta, bint accumulate,
                                       floating *g, floating *gb) noexcept nogil:
    """g (d x k) := (g +) x^T @ delta and gb (k) := (gb +) the column sums of
    delta, for the row-major x (n_rows x d).

    One output: four rows at a time, their products summed in pairs before they
    are added (a fixed order; a quarter of the loads and stores of g); otherwise
    the rows are added in order.
    """
    cdef Py_ssize_t i = 0, j, c
    cdef const floating *xi
    cdef const floating *di
    cdef floating d0, d1, d2, d3, s0 = 0, s1 = 0, s2 = 0, s3 = 0
    if not accumulate:
        memset(g, 0, d * k * sizeof(floating))
        memset(gb, 0, k * sizeof(floating))
    if k == 1:
        while i + 4 <= n_rows:
            xi = x + i * d
            d0 = delta[i]
            d1 = delta[i + 1]
            d2 = delta[i + 2]
            d3 = delta[i + 3]
            for j in range(d):  # unit stride: vectorises
                g[j] = g[j] + ((xi[j] * d0 + xi[d + j] * d1)
                               + (xi[2 * d + j] * d2 + xi[3 * d + j] * d3))
            s0 += d0
            s1 += d1
            s2 += d2
            s3 += d3
            i += 4
        gb[0] = gb[0] + ((s0 + s1) + (s2 + s3))
    for i in range(i, n_rows):
        xi = x + i * d
        di = delta + i * k
        for j in range(d):
            d0 = xi[j]
            for c in range(k):
                g[j * k + c] = g[j * k + c] + d0 * di[c]
        for c in range(k):
            gb[c] = gb[c] + di[c]


cdef void _forward(const Layout *lay, const floating *params, const floating *x_block,
                   const Input *csr, const Py_ssize_t *rows, Py_ssize_t row_start,
                   floating *work, Py_ssize_t n_rows, int hidden_activation,
                   int output_activation, const Model *train, const Packed *pk,
                   void *scratch) noexcept nogil:
    """acts[l + 1] := act(acts[l] @ W_l + b_l) for every layer, acts[0] = x_block,
    acts[l] = _acts(lay, work, l).

    With ``pk`` (not NULL) the products are packed ones (_product) with the
    weights packed in pk, and this slice's scratch ``scratch``.

    When ``csr`` is not NULL the input is its rows rows[row_start + i] (x_block unused).
    Training (``train`` not NULL) with _needs_preactivation(train) also keeps each
    hidden layer's pre-activations in its delta block _deltas(lay, work, l) and
    applies train's dropout to its output (rows numbered from row_start).
    """
    cdef Py_ssize_t l, width
    cdef const floating *inp = x_block
    cdef int act
    cdef bint hidden
    cdef bint keep_pre = train != NULL and _needs_preactivation(train)
    for l in range(lay.n_layers):
        if l == 0 and csr != NULL:
            _csr_times_dense(<const floating *> csr.x_data, csr.x_indices, csr.x_indptr,
                             rows, row_start, n_rows, params, lay.units[1],
                             _acts(lay, work, 1))
        elif not _is_bf16(pk) and _narrow_linear(lay):   # (bfloat16: its products)
            _rows_times_narrow(inp, n_rows, lay.units[0], lay.units[1], params,
                               _acts(lay, work, 1))
        else:
            _product(pk, scratch, _weights(pk, False, l, params),
                     c'N', c'N', <int> n_rows, <int> lay.units[l + 1], <int> lay.units[l],
                     inp, <int> lay.units[l], params + lay.coef_offset[l],
                     <int> lay.units[l + 1], <floating> 0.0, _acts(lay, work, l + 1),
                     <int> lay.units[l + 1])
        hidden = l < lay.n_layers - 1
        act = hidden_activation if hidden else output_activation
        width = lay.units[l + 1]
        if hidden and keep_pre:
            _bias_activation(_acts(lay, work, l + 1), params + lay.intercept_offset[l],
                             n_rows, width, ACT_IDENTITY)
            memcpy(_deltas(lay, work, l + 1), _acts(lay, work, l + 1),
                   n_rows * width * sizeof(floating))
            _bias_activation(_acts(lay, work, l + 1), <const floating *> NULL, n_rows,
                             width, act)
            if train.dropout > 0:
                _dropout_block(_acts(lay, work, l + 1), n_rows, width, row_start,
                               l + 1, train)
        else:
            _bias_activation(_acts(lay, work, l + 1), params + lay.intercept_offset[l],
                             n_rows, width, act)
        inp = _acts(lay, work, l + 1)


cdef void _backward(const Layout *lay, const floating *params, floating *grads,
                    const floating *x_block, const Input *csr, const Py_ssize_t *rows,
                    Py_ssize_t row_start, floating *work, Py_ssize_t n_rows,
                    int hidden_activation, bint accumulate,
                    const Model *model, const Packed *pk,
                    void *scratch) noexcept nogil:
    """Raw gradients from the output delta already in deltas[L]
    (acts[l] = _acts(lay, work, l), deltas[l] = _deltas(lay, work, l)).

    grads (coef part) := acts[l]^T @ deltas[l + 1] and grads (intercept part) :=
    column sums of deltas[l + 1]; added to the existing values if ``accumulate``.
    Neither the L2 term nor the division by the summed weight is applied here.
    With ``csr`` (sparse rows, see _forward) the first layer's coef gradient is
    always added: the caller keeps it zero when not accumulating. When
    _needs_preactivation(model), deltas[l] holds the pre-activations _forward kept
    (layer l's own delta overwrites them after use). ``pk``, ``scratch``: as in
    _forward (the weight gradient packs both of its operands in the scratch).
    """
    cdef const void *packed_wt
    cdef bint from_input = _needs_preactivation(model)
    cdef Py_ssize_t l, width
    cdef floating beta = 1.0 if accumulate else 0.0
    cdef const floating *inp
    for l in range(lay.n_layers - 1, -1, -1):
        width = lay.units[l + 1]
        inp = x_block if l == 0 else _acts(lay, work, l)
        if l == 0 and csr != NULL:
            _csr_transpose_times_dense(<const floating *> csr.x_data, csr.x_indices,
                                       csr.x_indptr, rows, row_start, n_rows,
                                       _deltas(lay, work, 1), width, grads)
        elif not _is_bf16(pk) and _narrow_linear(lay):
            _rows_transpose_times_narrow(inp, n_rows, lay.units[0], width,
                                         _deltas(lay, work, 1), accumulate, grads,
                                         grads + lay.intercept_offset[0])
            return
        else:
            _product(pk, scratch, NULL, c'T', c'N', <int> lay.units[l], <int> width,
                     <int> n_rows, inp, <int> lay.units[l], _deltas(lay, work, l + 1),
                     <int> width, beta, grads + lay.coef_offset[l], <int> width)
        packed_wt = _weights(pk, True, l, params)
        _column_sums(grads + lay.intercept_offset[l], _deltas(lay, work, l + 1), n_rows,
                     width, accumulate)
        if l > 0 and from_input:
            # acts[l] is no longer needed: it takes act'(z_l) x the dropout mask,
            # then delta_l := (delta_{l+1} @ W_l^T) * acts[l]
            _derivative_from_input(_acts(lay, work, l), _deltas(lay, work, l),
                                   n_rows * lay.units[l], hidden_activation)
            if model.dropout > 0:
                _dropout_block(_acts(lay, work, l), n_rows, lay.units[l], row_start, l,
                               model)
            _product(pk, scratch, packed_wt, c'N', c'T', <int> n_rows,
                     <int> lay.units[l], <int> width, _deltas(lay, work, l + 1),
                     <int> width, params + lay.coef_offset[l], <int> width,
                     <floating> 0.0, _deltas(lay, work, l), <int> lay.units[l])
            _multiply(_deltas(lay, work, l), _acts(lay, work, l), n_rows * lay.units[l])
        elif l > 0:
            # delta_l := (delta_{l+1} @ W_l^T) * act'(z_l)
            _product(pk, scratch, packed_wt, c'N', c'T', <int> n_rows,
                     <int> lay.units[l], <int> width, _deltas(lay, work, l + 1),
                     <int> width, params + lay.coef_offset[l], <int> width,
                     <floating> 0.0, _deltas(lay, work, l), <int> lay.units[l])
            _activation_derivative(_deltas(lay, work, l), _acts(lay, work, l),
                                   n_rows * lay.units[l],
                                   hidden_activation)


cdef void _multiply(floating *a, const floating *b, Py_ssize_t size) noexcept nogil:
    """a *= b element-wise."""
    cdef Py_ssize_t k
    for k in range(size):
        a[k] *= b[k]


cdef inline double _adam_rate(const Optimizer *opt, long long step) noexcept nogil:
    """Adam's bias-corrected learning rate at time step ``step``, as scikit-learn."""
    return (opt.learning_rate * sqrt(1 - opt.beta_2 ** step)
            / (1 - opt.beta_1 ** step))


cdef inline bint _uses_second_moment(const Optimizer *opt) noexcept nogil:
    """Whether state_2 holds a second moment (adam, adamw); else it is a 1-element
    stand-in."""
    return opt.solver == SOLVER_ADAM or opt.solver == SOLVER_ADAMW


ctypedef struct StepSize:
    # One batch's step (see _step_size).
    double rate        # sgd, rmsprop, adagrad: the learning rate; adam(w): bias-corrected
    double epsilon     # added to the root of the second moment
    double decay       # adamw: coefs *= decay before the step; else 1
    double grad_scale  # max_grad_norm's clip factor (1: no clipping)


cdef inline StepSize _step_size(const Optimizer *opt, long long step) noexcept nogil:
    """The step of time step ``step`` (counted from 1, for the adaptive solvers)."""
    cdef StepSize size
    size.rate = opt.learning_rate
    size.epsilon = opt.epsilon
    size.decay = 1.0
    size.grad_scale = 1.0
    if opt.solver == SOLVER_ADAM or opt.solver == SOLVER_ADAMW:
        size.rate = _adam_rate(opt, step)
    if opt.solver == SOLVER_ADAMW:
        # torch divides by sqrt(v) / sqrt(1 - b2^t) + eps; with the correction in
        # the rate that is sqrt(v) + eps sqrt(1 - b2^t). Its decay uses the plain rate.
        size.epsilon = opt.epsilon * sqrt(1 - opt.beta_2 ** step)
        size.decay = 1 - opt.learning_rate * opt.weight_decay
    return size


cdef inline double _clip_factor(double max_norm, double sq_norm) noexcept nogil:
    """torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6))."""
    cdef double factor = max_norm / (sqrt(sq_norm) + 1e-6)
    return factor if factor < 1.0 else 1.0


cdef double _gradient_sq_norm(const Kernel *k, const floating *params,
                              const floating *grads, Py_ssize_t lo, Py_ssize_t hi,
                              double weight_sum) noexcept nogil:
    """sum g^2 over params[lo:hi] of the gradient _update_range applies: (raw + a w)
    / weight_sum on the coefs (the L2 term included, as scikit-learn adds it),
    raw / weight_sum on the intercepts it trains."""
    cdef const Model *model = &k.model
    cdef Py_ssize_t i, nc = k.lay.n_coefs
    cdef double a = model.alpha if model.penalty_per_batch else model.alpha * weight_sum
    cdef double g, total = 0.0
    for i in range(lo, min(hi, nc)):
        g = (grads[i] + a * params[i]) / weight_sum
        total += g * g
    if model.fit_intercept:
        for i in range(max(lo, nc), hi):
            g = grads[i] / weight_sum
            total += g * g
    return total


cdef inline double _batch_weight_sum(const floating *sample_weight,
                                     const Py_ssize_t *order, Py_ssize_t start,
                                     Py_ssize_t stop) noexcept nogil:
    """Summed sample weight of the batch order[start:stop] (its row count when
    sample_weight is NULL)."""
    cdef double total = 0.0
    cdef Py_ssize_t i
    if sample_weight == NULL:
        return stop - start
    for i in range(start, stop):
        total += sample_weight[order[i]]
    return total


cdef void _adam_range(floating *w, const floating *raw, floating *m, floating *s,
                      Py_ssize_t n, floating alpha, floating weight_sum,
                      double beta_1, double beta_2, floating epsilon,
                      floating rate, floating decay) noexcept nogil:
    """Adam over n parameters (adamw: decay != 1).

    g = (raw + alpha w) / weight_sum;  w := decay w;  m := b1 m + (1 - b1) g;
    s := b2 s + (1 - b2) g^2;  w += (-rate m) / (sqrt(s) + eps)

    float32 adam goes through fgd_adam_f (_vmath.h: no divides, see there).
    """
    cdef Py_ssize_t k
    cdef floating g
    # 1 - beta in double, then rounded, as numpy applies scikit-learn's Python float
    # (1 - 0.999 in float32 arithmetic is 1.3e-5 off).
    cdef floating one_minus_b1 = 1 - beta_1, one_minus_b2 = 1 - beta_2
    cdef floating b1 = beta_1, b2 = beta_2
    if floating is float:
        if decay == 1:
            fgd_adam_f(w, raw, m, s, n, alpha, weight_sum, b1, one_minus_b1, b2,
                       one_minus_b2, epsilon, rate)
            return
    if decay == 1:
        for k in range(n):
            g = (raw[k] + alpha * w[k]) / weight_sum
            m[k] = b1 * m[k] + one_minus_b1 * g
            s[k] = b2 * s[k] + one_minus_b2 * (g * g)
            w[k] = w[k] + (-rate * m[k]) / (_sqrt(s[k]) + epsilon)
        return
    for k in range(n):
        g = (raw[k] + alpha * w[k]) / weight_sum
        m[k] = b1 * m[k] + one_minus_b1 * g
        s[k] = b2 * s[k] + one_minus_b2 * (g * g)
        w[k] = w[k] * decay + (-rate * m[k]) / (_sqrt(s[k]) + epsilon)


cdef void _rmsprop_range(floating *w, const floating *raw, floating *s, Py_ssize_t n,
                         floating alpha, floating weight_sum, double beta_2,
                         floating epsilon, floating lr) noexcept nogil:
    """torch's RMSprop (alpha = beta_2) over n parameters.

    g = (raw + alpha w) / weight_sum;  s := b2 s + (1 - b2) g^2;
    w -= lr g / (sqrt(s) + eps)
    """
    cdef Py_ssize_t k
    cdef floating g
    cdef floating b2 = beta_2, one_minus_b2 = 1 - beta_2
    for k in range(n):
        g = (raw[k] + alpha * w[k]) / weight_sum
        s[k] = b2 * s[k] + one_minus_b2 * (g * g)
        w[k] = w[k] - lr * (g / (_sqrt(s[k]) + epsilon))


cdef void _adagrad_range(floating *w, const floating *raw, floating *s, Py_ssize_t n,
                         floating alpha, floating weight_sum, floating epsilon,
                         floating lr) noexcept nogil:
    """torch's Adagrad (no learning-rate decay) over n parameters.

    g = (raw + alpha w) / weight_sum;  s += g^2;  w -= lr g / (sqrt(s) + eps)
    """
    cdef Py_ssize_t k
    cdef floating g
    for k in range(n):
        g = (raw[k] + alpha * w[k]) / weight_sum
        s[k] = s[k] + g * g
        w[k] = w[k] - lr * (g / (_sqrt(s[k]) + epsilon))


cdef void _sgd_range(floating *w, const floating *raw, floating *velocity,
                     Py_ssize_t n, floating alpha, floating weight_sum,
                     floating lr, floating momentum, bint nesterov) noexcept nogil:
    """Momentum SGD over n parameters.

    g = (raw + alpha w) / weight_sum;  v := momentum v - lr g;
    w += v, or w += momentum v - lr g with Nesterov's momentum.
    """
    cdef Py_ssize_t k
    cdef floating g
    if nesterov:
        for k in range(n):
            g = (raw[k] + alpha * w[k]) / weight_sum
            velocity[k] = momentum * velocity[k] - lr * g
            w[k] = w[k] + (momentum * velocity[k] - lr * g)
    else:
        for k in range(n):
            g = (raw[k] + alpha * w[k]) / weight_sum
            velocity[k] = momentum * velocity[k] - lr * g
            w[k] = w[k] + velocity[k]


cdef void _solver_range(const Optimizer *opt, const StepSize *size, floating *w,
                        const floating *raw, floating *state_1, floating *state_2,
                        Py_ssize_t n, double alpha, double weight_sum,
                        bint coefs) noexcept nogil:
    """One step of the optimizer over n parameters (the registry's solver branch);
    ``state_2`` is read by adam(w) only; adamw's decay applies to ``coefs`` only."""
    if opt.solver == SOLVER_ADAM or opt.solver == SOLVER_ADAMW:
        _adam_range(w, raw, state_1, state_2, n, <floating> alpha,
                    <floating> weight_sum, opt.beta_1, opt.beta_2,
                    <floating> size.epsilon, <floating> size.rate,
                    <floating> (size.decay if coefs else 1.0))
    elif opt.solver == SOLVER_RMSPROP:
        _rmsprop_range(w, raw, state_1, n, <floating> alpha, <floating> weight_sum,
                       opt.beta_2, <floating> size.epsilon, <floating> size.rate)
    elif opt.solver == SOLVER_ADAGRAD:
        _adagrad_range(w, raw, state_1, n, <floating> alpha, <floating> weight_sum,
                       <floating> size.epsilon, <floating> size.rate)
    else:
        _sgd_range(w, raw, state_1, n, <floating> alpha, <floating> weight_sum,
                   <floating> size.rate, <floating> opt.momentum, opt.nesterov)


cdef void _soft_threshold(floating *w, const floating *s, Py_ssize_t n, double l1,
                          double step, double epsilon) noexcept nogil:
    """w := sign(w) max(|w| - l1 x step_k, 0): the proximal step of the L1 term.

    It gives exact zeros. step_k is ``step`` (sgd: lr / (1 - momentum)), or
    step / (sqrt(s_k) + eps) per coordinate for the adaptive solvers (s their
    second moment or sum of squares).
    """
    cdef Py_ssize_t k
    cdef double t, x
    for k in range(n):
        x = w[k]
        if s != NULL:
            t = l1 * step / (sqrt(<double> s[k]) + epsilon)
        else:
            t = l1 * step
        if x > t:
            w[k] = <floating> (x - t)
        elif x < -t:
            w[k] = <floating> (x + t)
        else:
            w[k] = 0


ctypedef struct PenaltySums:
    # What the penalty terms need of some coefficients; every helper that sums
    # them returns one of these (by value).
    double sumsq     # sum w^2
    double sumabs    # sum |w|


cdef inline PenaltySums _square_and_abs_sums(const floating *w,
                                             Py_ssize_t n) noexcept nogil:
    """sum w^2 and sum |w|, in double (vectorised in C)."""
    cdef PenaltySums sums
    if floating is float:
        sums.sumsq = fgd_square_and_abs_sums_f(w, n, &sums.sumabs)
    else:
        sums.sumsq = fgd_square_and_abs_sums_d(w, n, &sums.sumabs)
    return sums


cdef PenaltySums _coef_step(const Kernel *k, floating *w, const floating *raw,
                            floating *state_1, floating *state_2, Py_ssize_t n,
                            double weight_sum, const StepSize *size) noexcept nogil:
    """One optimizer step over n coefficients w (raw gradient ``raw``, optimizer state
    ``state_1`` / ``state_2`` at the same positions; state_2 is the 1-element
    stand-in but for adam(w)), then the L1 proximal step. The coef gradient is
    (raw + a w) / weight_sum with a = alpha when the penalty is per batch
    (scikit-learn's MLP: _compute_loss_grad) and a = alpha x weight_sum when it is
    per sample (linear models). Clipping (size.grad_scale < 1) scales that
    gradient: it divides by weight_sum / grad_scale. Returns the penalty sums of
    the n coefs after the step."""
    cdef const Model *model = &k.model
    cdef const Optimizer *opt = &k.opt
    cdef double a = model.alpha if model.penalty_per_batch else model.alpha * weight_sum
    cdef double l1 = model.l1 / weight_sum if model.penalty_per_batch else model.l1
    cdef double divisor = weight_sum if size.grad_scale == 1 else (
        weight_sum / size.grad_scale)
    cdef bint two_moments = _uses_second_moment(opt)
    # The proximal step uses each coordinate's effective step: the adaptive solvers'
    # rate over sqrt(second moment) + eps, and for sgd lr / (1 - momentum), the step
    # of momentum's steady state (lr alone would settle at the optimum of a
    # (1 - momentum)-times weaker L1).
    cdef double step = size.rate
    cdef const floating *moment = NULL
    if opt.solver == SOLVER_SGD:
        step = opt.learning_rate / (1 - opt.momentum) if opt.momentum < 1 else (
            opt.learning_rate)
    elif two_moments:
        moment = state_2
    else:
        moment = state_1
    _solver_range(opt, size, w, raw, state_1, state_2, n, a, divisor, True)
    if l1 > 0:
        _soft_threshold(w, moment, n, l1, step, size.epsilon)
    return _square_and_abs_sums(w, n)


cdef PenaltySums _update_range(const Kernel *k, floating *params, const floating *grads,
                              floating *state_1, floating *state_2, Py_ssize_t lo,
                              Py_ssize_t hi, double weight_sum,
                              const StepSize *size) noexcept nogil:
    """One optimizer step over params[lo:hi]: _coef_step on its coefs, the plain
    step (a = 0, no L1) on its intercepts, which stay untouched without
    fit_intercept. The coef and intercept parts of the range are separate passes so
    the inner loops are branch-free and vectorise.
    Returns the penalty sums of the coefs in the range, after the step.
    """
    cdef Py_ssize_t nc = k.lay.n_coefs
    cdef Py_ssize_t c_lo = lo, c_hi = min(hi, nc)      # coef part of the range
    cdef Py_ssize_t i_lo = max(lo, nc), i_hi = hi      # intercept part
    cdef double divisor = weight_sum if size.grad_scale == 1 else (
        weight_sum / size.grad_scale)
    cdef bint two_moments = _uses_second_moment(&k.opt)
    cdef PenaltySums sums
    sums.sumsq = 0.0
    sums.sumabs = 0.0
    if c_hi > c_lo:
        sums = _coef_step(k, params + c_lo, grads + c_lo, state_1 + c_lo,
                          state_2 + c_lo if two_moments else state_2, c_hi - c_lo,
                          weight_sum, size)
    if k.model.fit_intercept and i_hi > i_lo:
        _solver_range(&k.opt, size, params + i_lo, grads + i_lo, state_1 + i_lo,
                      state_2 + i_lo if two_moments else state_2, i_hi - i_lo, 0.0,
                      divisor, False)
    return sums


cdef enum:
    # W1 rows gathered per lazy step (_lazy_first_layer_step): bounded scratch.
    _LAZY_CHUNK = 256


cdef void _lazy_chunk_step(const Kernel *k, floating *params, const floating *grads,
                           floating *state_1, floating *state_2,
                           const Py_ssize_t *features, Py_ssize_t n,
                           floating *scratch, double weight_sum, const StepSize *size,
                           PenaltySums *change) noexcept nogil:
    """_coef_step over the W1 rows of n distinct features: gathered into scratch
    (4 x _LAZY_CHUNK rows), stepped as one vector, scattered back. The step is
    element-wise, so each value is what the dense step computes from the same
    inputs. ``change`` += the rows' penalty sums after minus before."""
    cdef Py_ssize_t width = k.lay.units[1], cap = _LAZY_CHUNK * width
    cdef Py_ssize_t i, at, size_n = n * width
    cdef bint two_moments = _uses_second_moment(&k.opt)
    cdef floating *w = scratch
    cdef floating *g = scratch + cap
    cdef floating *s1 = scratch + 2 * cap
    cdef floating *s2 = scratch + 3 * cap
    cdef PenaltySums before, after
    if width == 1:
        # Plain loads and stores (binary and single-target models): the loops below
        # become one memmove call per row and value.
        for i in range(n):
            at = features[i]
            w[i] = params[at]
            g[i] = grads[at]
            s1[i] = state_1[at]
            if two_moments:
                s2[i] = state_2[at]
    else:
        for i in range(n):
            at = features[i] * width
            memcpy(w + i * width, params + at, width * sizeof(floating))
            memcpy(g + i * width, grads + at, width * sizeof(floating))
            memcpy(s1 + i * width, state_1 + at, width * sizeof(floating))
            if two_moments:
                memcpy(s2 + i * width, state_2 + at, width * sizeof(floating))
    before = _square_and_abs_sums(w, size_n)
    after = _coef_step(k, w, g, s1, s2 if two_moments else state_2, size_n,
                       weight_sum, size)
    if width == 1:
        for i in range(n):
            at = features[i]
            params[at] = w[i]
            state_1[at] = s1[i]
            if two_moments:
                state_2[at] = s2[i]
    else:
        for i in range(n):
            at = features[i] * width
            memcpy(params + at, w + i * width, width * sizeof(floating))
            memcpy(state_1 + at, s1 + i * width, width * sizeof(floating))
            if two_moments:
                memcpy(state_2 + at, s2 + i * width, width * sizeof(floating))
    change.sumsq += after.sumsq - before.sumsq
    change.sumabs += after.sumabs - before.sumabs


cdef extern from *:
    int _count_trailing_zeros "__builtin_ctzll"(unsigned long long x) nogil


cdef PenaltySums _lazy_first_layer_step(const Kernel *k, floating *params,
                                        const floating *grads, floating *state_1,
                                        floating *state_2, Py_ssize_t start,
                                        Py_ssize_t stop, unsigned long long *present,
                                        Py_ssize_t *features, floating *scratch,
                                        double weight_sum,
                                        const StepSize *size) noexcept nogil:
    """lazy_sparse: the optimizer step of the first layer's rows of the features
    stored in the batch k.order[start:stop] only (torch.optim.SparseAdam's rule,
    for every solver): their L2 term included, the other rows, their moments and
    their L2 term left as they are. The features are marked in the bitmap
    ``present`` (all zero on entry and again on return) and stepped in increasing
    order, so the rows are read front to back (a feature's rows at random cost a
    cache miss each). Returns the change of the W1 penalty sums."""
    cdef const Py_ssize_t *indptr = k.data.x_indptr
    cdef const Py_ssize_t *indices = k.data.x_indices
    cdef Py_ssize_t i, r, p, f, word, n = 0
    cdef Py_ssize_t n_words = _ceil_div(k.lay.units[0], 64)
    cdef unsigned long long bits
    cdef PenaltySums change
    change.sumsq = 0.0
    change.sumabs = 0.0
    for i in range(start, stop):
        r = k.order[i]
        for p in range(indptr[r], indptr[r + 1]):
            f = indices[p]
            present[f >> 6] |= (<unsigned long long> 1) << (f & 63)
    for word in range(n_words):
        bits = present[word]
        if bits == 0:
            continue
        present[word] = 0
        while bits != 0:
            features[n] = word * 64 + _count_trailing_zeros(bits)
            n += 1
            bits &= bits - 1
            if n == _LAZY_CHUNK:
                _lazy_chunk_step(k, params, grads, state_1, state_2, features, n,
                                 scratch, weight_sum, size, &change)
                n = 0
    if n > 0:
        _lazy_chunk_step(k, params, grads, state_1, state_2, features, n, scratch,
                         weight_sum, size, &change)
    return change


cdef inline PenaltySums _sums_of(double sumsq, double sumabs) noexcept nogil:
    cdef PenaltySums sums
    sums.sumsq = sumsq
    sums.sumabs = sumabs
    return sums


cdef inline double _penalty(const Model *model, PenaltySums sums,
                            double weight_sum) noexcept nogil:
    """alpha / 2 ||W||^2 + l1 ||W||_1, divided by the weight sum when per batch."""
    cdef double value = 0.5 * model.alpha * sums.sumsq + model.l1 * sums.sumabs
    return value / weight_sum if model.penalty_per_batch else value


cdef inline PenaltySums _coef_sums(const Layout *lay,
                                   const floating *params) noexcept nogil:
    """The penalty sums of all the coefs."""
    return _square_and_abs_sums(params, lay.n_coefs)


cdef int _fill_layout(Layout *lay, const Py_ssize_t[::1] units, Py_ssize_t[::1] offsets,
                      Py_ssize_t capacity, bint sparse, int n_parts,
                      int n_threads) except -1:
    """Parameter offsets of the network ``units`` and workspace offsets for
    ``capacity`` rows, into ``offsets`` (4 x len(units) values, owned by the caller),
    after checking 1 <= n_threads <= n_parts <= MAX_THREADS."""
    if units.shape[0] < 2:
        raise ValueError("a network needs at least one weight layer")
    if offsets.shape[0] < 4 * units.shape[0]:
        raise ValueError("offsets is too small")
    if not 1 <= n_parts <= MAX_THREADS or not 1 <= n_threads <= n_parts:
        raise ValueError(f"need 1 <= n_threads <= slices <= {MAX_THREADS}, got "
                         f"n_threads={n_threads}, slices={n_parts}")
    cdef Py_ssize_t l, pos = 0, n_layers = units.shape[0] - 1
    lay.n_layers = n_layers
    lay.units = &units[0]
    lay.coef_offset = &offsets[0]
    lay.intercept_offset = &offsets[n_layers + 1]
    lay.act_offset = &offsets[2 * (n_layers + 1)]
    lay.delta_offset = &offsets[3 * (n_layers + 1)]
    for l in range(n_layers):
        lay.coef_offset[l] = pos
        pos += units[l] * units[l + 1]
    lay.n_coefs = pos
    for l in range(n_layers):
        lay.intercept_offset[l] = pos
        pos += units[l + 1]
    lay.n_params = pos
    # The workspace as _workspace_size counts it: input rows (none when sparse),
    # then acts and delta of every hidden layer, then the output block, whose
    # delta overwrites its activations (_output_loss_delta works in place).
    lay.capacity = capacity
    lay.act_offset[0] = 0
    lay.delta_offset[0] = 0
    pos = 0 if sparse else capacity * units[0]
    for l in range(1, n_layers):
        lay.act_offset[l] = pos
        pos += capacity * units[l]
        lay.delta_offset[l] = pos
        pos += capacity * units[l]
    lay.act_offset[n_layers] = pos
    lay.delta_offset[n_layers] = pos
    return 0


cdef Py_ssize_t[::1] _offsets_for(const Py_ssize_t[::1] units):
    """The heap array _fill_layout fills (kept alive by the calling kernel)."""
    return np.empty(4 * units.shape[0], dtype=np.intp)


cdef Py_ssize_t _workspace_size(const Py_ssize_t[::1] units, Py_ssize_t n_rows,
                                bint sparse):
    """Workspace for one block: the gathered input rows (none when X is sparse), then
    acts and deltas per layer.

    The output layer's delta overwrites its activations, so it needs no space of its own.
    """
    cdef Py_ssize_t l, n_layers = units.shape[0] - 1
    cdef Py_ssize_t total = n_rows * ((0 if sparse else units[0]) + units[n_layers])
    for l in range(1, n_layers):
        total += 2 * n_rows * units[l]
    return total


cdef enum:
    MAX_THREADS = 64


cdef double _slice_gradient(const Kernel *k, const floating *params, floating *grads,
                            floating *work, const Py_ssize_t *rows,
                            Py_ssize_t row_start, Py_ssize_t n_rows,
                            bint accumulate, Py_ssize_t slice) noexcept nogil:
    """Raw gradient (into grads) and weighted data loss (returned) of some rows.

    The rows are row_start .. row_start + n_rows - 1, through ``rows`` if not NULL.
    ``work`` is one thread's workspace for lay.capacity >= n_rows rows. Dense rows
    that are contiguous in X are used in place; others are gathered first. Sparse
    rows are read in place; the first layer's coef gradient is then added to
    ``grads`` even without ``accumulate`` (the caller keeps it zero). With
    packed products (train_epoch's k.packed, path != -1) ``slice`` says whose
    scratch to use.
    """
    cdef const Packed *pk = &k.packed if k.packed.path != -1 else NULL
    cdef void *scratch = _at(pk, pk.scratch_offset + slice * pk.scratch_size,
                             params) if pk != NULL else NULL
    cdef const Layout *lay = &k.lay
    cdef const Model *model = &k.model
    cdef const Input *data = &k.data
    cdef floating *x_block = NULL if model.sparse else _acts(lay, work, 0)
    cdef const floating *inp
    cdef Py_ssize_t n_features = lay.units[0]
    cdef const Input *csr = data if model.sparse else NULL
    if rows != NULL:
        _prefetch_rows(<const floating *> data.y, rows, row_start, row_start + n_rows,
                       lay.units[lay.n_layers])
    if model.sparse:
        inp = NULL
    elif rows != NULL or data.x_col_stride != 0:
        _gather_rows(data, rows, row_start, n_rows, n_features, x_block)
        inp = x_block
    else:
        inp = <const floating *> data.x + row_start * n_features
    _forward(lay, params, inp, csr, rows, row_start, work, n_rows,
             model.hidden_activation, model.output_activation, model, pk, scratch)
    cdef double loss = _output_loss_delta(
        _acts(lay, work, lay.n_layers), <const floating *> data.y,
        <const floating *> data.sample_weight, rows, row_start, n_rows,
        lay.units[lay.n_layers], model.loss, model.has_weights)
    _backward(lay, params, grads, inp, csr, rows, row_start, work, n_rows,
              model.hidden_activation, accumulate, model, pk, scratch)
    return loss


cdef void _sum_gradients(floating *grads, const floating *extra, Py_ssize_t stride,
                         Py_ssize_t n_extra, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """grads[lo:hi] += the other threads' gradients, in thread order (deterministic)."""
    cdef Py_ssize_t t, k
    cdef const floating *g
    for t in range(n_extra):
        g = extra + t * stride
        for k in range(lo, hi):
            grads[k] += g[k]


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef void _sum_and_clear_gradients(floating *grads, floating *extra, Py_ssize_t stride,
                                   Py_ssize_t n_extra, Py_ssize_t lo,
                                   Py_ssize_t hi) noexcept nogil:
    """_sum_gradients over [lo, hi), leaving the other threads' gradients zero there."""
    cdef Py_ssize_t t, k
    cdef floating *g
    for t in range(n_extra):
        g = extra + t * stride
        for k in range(lo, hi):
            grads[k] += g[k]
            g[k] = 0


cdef bint _clear_by_rows(const Py_ssize_t *x_indptr, const Py_ssize_t *order,
                         Py_ssize_t start, Py_ssize_t stop, Py_ssize_t width,
                         Py_ssize_t n_first, Py_ssize_t item_size) noexcept nogil:
    """Whether a sparse batch's W1 gradient rows are summed and cleared row by row
    (few rows touched), or the whole W1 part densely and in parallel: a scattered
    row costs a cache line for as little as one value, so rows win only while they
    touch under a quarter of W1's cache lines. Both give the same numbers."""
    cdef Py_ssize_t i, r, nnz = 0
    for i in range(start, stop):
        r = order[i]
        nnz += x_indptr[r + 1] - x_indptr[r]
    return 4 * nnz * _ceil_div(width * item_size, 64) < n_first * item_size // 64


def all_finite(const floating[::1] x, int n_threads):
    """True when x holds no NaN and no infinity; n_threads share the scan."""
    cdef Py_ssize_t n = x.shape[0], chunk, lo, hi
    cdef int t
    cdef int finite[MAX_THREADS]
    if n == 0:
        return True
    n_threads = max(1, min(n_threads, MAX_THREADS))
    chunk = _ceil_div(n, n_threads)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule="static"):
            lo = min(t * chunk, n)
            hi = min(lo + chunk, n)
            if floating is float:
                finite[t] = fgd_all_finite_f(&x[0] + lo, hi - lo)
            else:
                finite[t] = fgd_all_finite_d(&x[0] + lo, hi - lo)
    for t in range(n_threads):
        if not finite[t]:
            return False
    return True


def parameter_count(const Py_ssize_t[::1] units):
    """Number of parameters (coefs then intercepts) of the network ``units``."""
    cdef Py_ssize_t l, n = 0
    for l in range(units.shape[0] - 1):
        n += units[l] * units[l + 1] + units[l + 1]
    return n


def workspace_size(const Py_ssize_t[::1] units, Py_ssize_t n_rows, int n_slices=1,
                   bint sparse=False):
    """Elements of the ``work`` buffer: n_slices workspaces of ``n_rows`` rows each
    (without room for input rows when X is sparse), and a private gradient buffer
    for every slice but the first."""
    return n_slices * _workspace_size(units, n_rows, sparse) + (
        (n_slices - 1) * parameter_count(units))


def unit_split_workspace_size(const Py_ssize_t[::1] units, Py_ssize_t batch_size,
                              int n_parts, bint sparse=False):
    """Elements of train_epoch's ``work`` buffer with ``split_units``."""
    return _unit_split_workspace_size(units, batch_size, n_parts, sparse)


cdef Py_ssize_t _column_stride(const floating[:, :] X) except -1:
    """0 for a row-major X, its column stride for a column-major one (Input)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], size = sizeof(floating)
    if (d <= 1 or X.strides[1] == size) and (n <= 1 or X.strides[0] == d * size):
        return 0
    if (n <= 1 or X.strides[0] == size) and X.strides[1] == n * size:
        return n
    raise ValueError("X must be C- or F-contiguous")


cdef Input _input(const floating[:, :] X, const floating[::1] X_data,
                  const Py_ssize_t[::1] X_indices, const Py_ssize_t[::1] X_indptr,
                  const floating[:, ::1] Y, const floating[::1] sample_weight,
                  const Model *model) except *:
    cdef Input data
    data.x = &X[0, 0] if X.shape[0] > 0 else NULL
    data.x_col_stride = _column_stride(X)
    data.x_data = &X_data[0] if X_data.shape[0] > 0 else NULL
    data.x_indices = &X_indices[0] if X_indices.shape[0] > 0 else NULL
    data.x_indptr = &X_indptr[0] if X_indptr.shape[0] > 0 else NULL
    data.y = &Y[0, 0] if Y.shape[0] > 0 else NULL
    data.sample_weight = &sample_weight[0] if model.has_weights else NULL
    return data


# ---------------------------------------------------------------------------
# One hidden layer, hidden units split across threads
# ---------------------------------------------------------------------------
#
# With row slices every batch ends with the threads summing each other's private
# gradients and updating parameters the other core read in the forward pass: at
# batch 32 that traffic ate the second core's gain (benchmarks/NOTES.md). For a
# network with one hidden layer, part p instead owns hidden units [lo_p, hi_p): its
# columns of W1, its entries of b1 and its rows of W2 (and part 0 owns b2). Each
# part computes its hidden activations for the whole batch and its share of the
# output logits; after one barrier every thread sums the shares (in part order),
# takes the loss and output delta, and backpropagates through and updates its own
# parameters only. No gradient is summed and no parameter changes core. W1's column
# blocks are made contiguous for the epoch (_block_columns), so the parts' updates
# never write the same cache line.

cdef inline Py_ssize_t _unit_start(Py_ssize_t n_units, int n_parts,
                                   Py_ssize_t part) noexcept nogil:
    """First unit of ``part`` (part n_parts: n_units). A value, not an out-pointer:
    Cython privatises only variables assigned in a parallel block."""
    return part * n_units // n_parts


cdef void _block_columns(floating *a, floating *tmp, Py_ssize_t n_rows,
                         Py_ssize_t n_cols, int n_parts, bint to_blocks) noexcept nogil:
    """Reorder the row-major n_rows x n_cols matrix ``a`` into n_parts column blocks,
    each a contiguous row-major n_rows x width matrix (to_blocks), or back.
    ``tmp`` holds n_rows x n_cols elements."""
    cdef Py_ssize_t i, lo, width
    cdef int p
    memcpy(tmp, a, n_rows * n_cols * sizeof(floating))
    for p in range(n_parts):
        lo = _unit_start(n_cols, n_parts, p)
        width = _unit_start(n_cols, n_parts, p + 1) - lo
        for i in range(n_rows):
            if to_blocks:
                memcpy(a + n_rows * lo + i * width, tmp + i * n_cols + lo,
                       width * sizeof(floating))
            else:
                memcpy(a + i * n_cols + lo, tmp + n_rows * lo + i * width,
                       width * sizeof(floating))


cdef Py_ssize_t _unit_split_workspace_size(const Py_ssize_t[::1] units,
                                           Py_ssize_t batch_size, int n_parts,
                                           bint sparse):
    """Per part: gathered rows (none when sparse), hidden activations, hidden
    deltas, output block; then the parts' logit shares for two batches."""
    cdef Py_ssize_t width = _ceil_div(units[1], n_parts)
    return n_parts * batch_size * ((0 if sparse else units[0]) + 2 * width + units[2]) + (
        2 * n_parts * batch_size * units[2])


cdef void _split_forward(const Layout *lay, const floating *params, const floating *x,
                         const Input *csr, const Py_ssize_t *rows, Py_ssize_t row_start,
                         floating *hidden, floating *share, Py_ssize_t n_rows,
                         Py_ssize_t lo, Py_ssize_t hi, bint add_output_bias,
                         int hidden_activation) noexcept nogil:
    """hidden := act(x @ W1[:, lo:hi] + b1[lo:hi]); share := hidden @ W2[lo:hi, :]
    (+ b2 for the part that owns it). W1 is in column blocks. With ``csr`` the
    input is its rows rows[row_start + i] instead of x."""
    cdef Py_ssize_t n_in = lay.units[0], n_out = lay.units[2], width = hi - lo, i, j
    cdef const floating *b2 = params + lay.intercept_offset[1]
    if csr != NULL:
        _csr_times_dense(<const floating *> csr.x_data, csr.x_indices, csr.x_indptr,
                         rows, row_start, n_rows, params + n_in * lo, width, hidden)
    else:
        _gemm(c'N', c'N', <int> n_rows, <int> width, <int> n_in, <floating> 1.0, x,
              <int> n_in, params + n_in * lo, <int> width, <floating> 0.0, hidden,
              <int> width)
    _bias_activation(hidden, params + lay.intercept_offset[0] + lo, n_rows, width,
                     hidden_activation)
    _gemm(c'N', c'N', <int> n_rows, <int> n_out, <int> width, <floating> 1.0, hidden,
          <int> width, params + lay.coef_offset[1] + lo * n_out, <int> n_out,
          <floating> 0.0, share, <int> n_out)
    if add_output_bias:
        for i in range(n_rows):
            for j in range(n_out):
                share[i * n_out + j] += b2[j]


cdef PenaltySums _split_backward_update(const Kernel *k, floating *params,
                                        floating *grads, floating *state_1,
                                        floating *state_2, const floating *x,
                                        Py_ssize_t row_start, const floating *hidden,
                                        floating *hidden_delta, const floating *delta,
                                        Py_ssize_t n_rows, Py_ssize_t lo, Py_ssize_t hi,
                                        bint owns_output_bias, double weight_sum,
                                        const StepSize *size) noexcept nogil:
    """Gradients of one part's parameters from the output delta, then their update;
    returns the penalty sums of the part's coefs after it.

    The batch's rows are k.order[row_start:]. Sparse input rows (see
    _split_forward): the part's block of the W1 gradient is zero on entry and left
    zero on return (only the rows of the batch's features are written and cleared).
    """
    cdef const Layout *lay = &k.lay
    cdef const Model *model = &k.model
    cdef const Input *csr = &k.data if model.sparse else NULL
    cdef const Py_ssize_t *rows = k.order
    cdef Py_ssize_t n_in = lay.units[0], n_out = lay.units[2], width = hi - lo
    cdef Py_ssize_t w2 = lay.coef_offset[1] + lo * n_out
    cdef Py_ssize_t b1 = lay.intercept_offset[0] + lo, b2 = lay.intercept_offset[1]
    cdef PenaltySums sums, part
    _gemm(c'T', c'N', <int> width, <int> n_out, <int> n_rows, <floating> 1.0, hidden,
          <int> width, delta, <int> n_out, <floating> 0.0, grads + w2, <int> n_out)
    if owns_output_bias:
        _column_sums(grads + b2, delta, n_rows, n_out, False)
    # hidden_delta := (delta @ W2[lo:hi, :]^T) * act'(hidden), before W2 moves.
    _gemm(c'N', c'T', <int> n_rows, <int> width, <int> n_out, <floating> 1.0, delta,
          <int> n_out, params + w2, <int> n_out, <floating> 0.0, hidden_delta,
          <int> width)
    _activation_derivative(hidden_delta, hidden, n_rows * width,
                           model.hidden_activation)
    if csr != NULL:
        _csr_transpose_times_dense(<const floating *> csr.x_data, csr.x_indices,
                                   csr.x_indptr, rows, row_start, n_rows, hidden_delta,
                                   width, grads + n_in * lo)
    else:
        _gemm(c'T', c'N', <int> n_in, <int> width, <int> n_rows, <floating> 1.0, x,
              <int> n_in, hidden_delta, <int> width, <floating> 0.0, grads + n_in * lo,
              <int> width)
    _column_sums(grads + b1, hidden_delta, n_rows, width, False)
    sums = _update_range(k, params, grads, state_1, state_2, n_in * lo, n_in * hi,
                         weight_sum, size)
    if csr != NULL:
        _clear_csr_rows(csr.x_indices, csr.x_indptr, rows, row_start, n_rows, width,
                        grads + n_in * lo)
    part = _update_range(k, params, grads, state_1, state_2, w2, w2 + width * n_out,
                         weight_sum, size)
    sums.sumsq += part.sumsq
    sums.sumabs += part.sumabs
    # The intercepts: no penalty.
    _update_range(k, params, grads, state_1, state_2, b1, b1 + width, weight_sum,
                  size)
    if owns_output_bias:
        _update_range(k, params, grads, state_1, state_2, b2, b2 + n_out, weight_sum,
                      size)
    return sums


cdef bint _train_epoch_unit_split(const Kernel *k, floating *params, floating *grads,
                                  floating *state_1, floating *state_2, floating *work,
                                  Py_ssize_t n_samples, Py_ssize_t batch_size,
                                  double *loss_sum, long long *step) noexcept nogil:
    """The epoch of train_epoch for one hidden layer, hidden units split in
    k.n_slices parts.

    k.n_threads <= n_parts threads share the parts; the arithmetic depends on
    n_parts only. Returns True if a signal handler raised (the exception is left
    set; the epoch stops after the batch in progress).
    """
    cdef const Layout *lay = &k.lay
    cdef const Model *model = &k.model
    cdef const Input *data = &k.data
    cdef const Optimizer *opt = &k.opt
    cdef const Py_ssize_t *order = k.order
    cdef int n_parts = k.n_slices, n_threads = k.n_threads
    cdef Py_ssize_t n_in = lay.units[0], n_hidden = lay.units[1], n_out = lay.units[2]
    cdef Py_ssize_t width_max = _ceil_div(n_hidden, n_parts)
    cdef Py_ssize_t x_width = 0 if model.sparse else n_in   # gathered rows per part
    cdef Py_ssize_t part_work = batch_size * (x_width + 2 * width_max + n_out)
    cdef const Input *csr = data if model.sparse else NULL
    cdef floating *shares = work + n_parts * part_work   # [2][n_parts][batch x n_out]
    cdef Py_ssize_t share_size = batch_size * n_out
    # Shared between the threads, so arrays (Cython privatises assigned scalars).
    # Each part's penalty sums after its update, per batch parity: a batch reads the
    # previous batch's while a faster thread may already write the current one's.
    cdef PenaltySums part_sums[2 * MAX_THREADS]
    cdef double result[1]
    cdef Py_ssize_t stop_before[1]
    cdef Py_ssize_t tid, team, p, lo, hi, start, stop, n_rows, batch, i, parity
    cdef floating *x_block
    cdef floating *out
    cdef floating *share
    cdef double batch_loss, weight_sum, sumsq, sumabs
    cdef StepSize size
    cdef long long t
    cdef bint done

    _block_columns(params, grads, n_in, n_hidden, n_parts, True)
    _block_columns(state_1, grads, n_in, n_hidden, n_parts, True)
    if _uses_second_moment(opt):
        _block_columns(state_2, grads, n_in, n_hidden, n_parts, True)
    if model.sparse:
        # The W1 gradient stays zero outside the rows a batch touches.
        memset(grads, 0, n_in * n_hidden * sizeof(floating))
    for p in range(n_parts):
        part_sums[n_parts + p] = _sums_of(0.0, 0.0)
    part_sums[n_parts] = _coef_sums(lay, params)  # "batch -1"
    stop_before[0] = PY_SSIZE_T_MAX
    result[0] = 0.0

    with parallel(num_threads=n_threads):
        tid = threadid()
        team = fastgd_team_size()
        x_block = work + tid * part_work
        out = x_block + batch_size * (x_width + 2 * width_max)
        t = step[0]
        batch = 0
        start = 0
        done = False
        while start < n_samples and not done:
            if batch >= stop_before[0]:
                done = True
            else:
                stop = min(start + batch_size, n_samples)
                n_rows = stop - start
                parity = batch % 2
                _prefetch_rows(<const floating *> data.y, order, start, stop, n_out)
                if not model.sparse:
                    _gather_rows(data, order, start, n_rows, n_in, x_block)
                p = tid
                while p < n_parts:
                    lo = _unit_start(n_hidden, n_parts, p)
                    hi = _unit_start(n_hidden, n_parts, p + 1)
                    _split_forward(lay, params, x_block, csr, order, start,
                                   work + p * part_work + batch_size * x_width,
                                   shares + (parity * n_parts + p) * share_size,
                                   n_rows, lo, hi, p == 0, model.hidden_activation)
                    p = p + team
                fastgd_barrier()
                # Every thread: logits = the shares summed in part order, the loss
                # and the output delta (a batch x n_out block: cheap to repeat).
                share = shares + parity * n_parts * share_size
                for i in range(n_rows * n_out):
                    out[i] = share[i]
                for p in range(1, n_parts):
                    for i in range(n_rows * n_out):
                        out[i] = out[i] + share[p * share_size + i]
                _bias_activation(out, <const floating *> NULL, n_rows, n_out,
                                 model.output_activation)
                batch_loss = _output_loss_delta(
                    out, <const floating *> data.y, <const floating *> data.sample_weight,
                    order, start, n_rows, n_out, model.loss, model.has_weights)
                weight_sum = _batch_weight_sum(<const floating *> data.sample_weight,
                                               order, start, stop)
                sumsq = 0.0
                sumabs = 0.0
                for p in range(n_parts):
                    sumsq = sumsq + part_sums[(1 - parity) * n_parts + p].sumsq
                    sumabs = sumabs + part_sums[(1 - parity) * n_parts + p].sumabs
                batch_loss = batch_loss / weight_sum + _penalty(
                    model, _sums_of(sumsq, sumabs), weight_sum)
                if tid == 0:
                    result[0] = result[0] + batch_loss * n_rows
                if opt.solver != SOLVER_SGD:
                    t = t + 1
                size = _step_size(opt, t)
                p = tid
                while p < n_parts:
                    lo = _unit_start(n_hidden, n_parts, p)
                    hi = _unit_start(n_hidden, n_parts, p + 1)
                    part_sums[parity * n_parts + p] = _split_backward_update(
                        k, params, grads, state_1, state_2, x_block, start,
                        work + p * part_work + batch_size * x_width,
                        work + p * part_work + batch_size * (x_width + width_max),
                        out, n_rows, lo, hi, p == 0, weight_sum, &size)
                    p = p + team
                start = stop
                batch = batch + 1
                # Ctrl-C: every thread stops before the same batch (the one after
                # next: the others may already be past this batch's barrier).
                if tid == 0 and batch % SIGNAL_CHECK_INTERVAL == 0:
                    with gil:
                        if _check_signals_keep_error() < 0:
                            stop_before[0] = batch + 1
        if tid == 0:
            step[0] = t

    _block_columns(params, grads, n_in, n_hidden, n_parts, False)
    _block_columns(state_1, grads, n_in, n_hidden, n_parts, False)
    if _uses_second_moment(opt):
        _block_columns(state_2, grads, n_in, n_hidden, n_parts, False)
    loss_sum[0] = result[0]
    return stop_before[0] != PY_SSIZE_T_MAX


def train_epoch(floating[::1] params, floating[::1] grads,
                floating[::1] state_1, floating[::1] state_2,
                floating[::1] work,
                const Py_ssize_t[::1] units, Model model, Optimizer opt,
                const floating[:, :] X, const floating[::1] X_data,
                const Py_ssize_t[::1] X_indices, const Py_ssize_t[::1] X_indptr,
                const floating[:, ::1] Y, const floating[::1] sample_weight,
                const Py_ssize_t[::1] order, Py_ssize_t batch_size, int n_slices,
                int n_threads, long long[::1] step_out, bint split_units=False):
    """Train one epoch of mini-batch gradient descent, in place, without the GIL.

    Batches are consecutive slices of ``order`` (the last one may be smaller).
    For each batch: gather its rows, forward pass, loss and output delta,
    backward pass, and one fused optimizer update of ``params``.

    Each batch's rows are split into n_slices contiguous slices with private
    gradients, summed in slice order; the update is split into n_slices parameter
    ranges. n_threads OpenMP threads (each calling single-threaded BLAS) share the
    slices. The arithmetic depends on n_slices only, so results are bitwise
    identical whatever n_threads is; n_slices = 1 is the plain serial epoch.

    Parameters
    ----------
    params, grads : flat buffers (coefs then intercepts of every layer)
    state_1, state_2 : optimizer state: sgd velocity in state_1; adam's (adamw's)
        first and second moments; rmsprop's second moment or adagrad's sum of
        squares in state_1 (state_2 is a 1-element stand-in but for adam(w)).
    work : ``workspace_size(units, ceil(batch_size / n_slices), n_slices)`` elements.
    units : layer widths, units[0] = n_features, units[-1] = n_outputs.
    model, opt : dicts converted to the Model / Optimizer structs.
    X : dense rows (n_samples x n_features), or (0 x n_features) when sparse.
    X_data, X_indices, X_indptr : CSR arrays when ``model["sparse"]``.
    Y : encoded targets (n_samples x n_outputs).
    sample_weight : (n_samples,) or empty.
    order : the row order of this epoch (a permutation or arange).
    batch_size : rows per batch.
    n_slices : row slices per batch (fixes the arithmetic).
    n_threads : OpenMP threads sharing the slices (1: the calling thread only).
    step_out : one int64: receives the adaptive solvers' time step after the last
        batch taken,
        also when a signal handler (Ctrl-C) stops the epoch early and its exception
        propagates: the parameters then hold the batches taken so far, and
        ``step_out`` says how many (``opt["step"]`` + batches).
    split_units : for one hidden layer only: n_slices parts own the hidden units
        instead of rows of the batch (see _train_epoch_unit_split); ``work`` then
        holds ``unit_split_workspace_size(units, batch_size, n_slices)`` elements.

    Returns
    -------
    loss_sum : float
        Sum over batches of (batch loss including the penalty) x (batch rows),
        as scikit-learn accumulates it.
    """
    cdef double part_loss[MAX_THREADS]
    cdef PenaltySums part_sums[MAX_THREADS]
    cdef double part_norm[MAX_THREADS]
    cdef Kernel k
    cdef Py_ssize_t[::1] offsets = _offsets_for(units)
    cdef Py_ssize_t capacity = _ceil_div(batch_size, max(1, n_slices))
    cdef bint clipping = opt.max_grad_norm > 0
    cdef StepSize size
    cdef double sq_norm
    _fill_layout(&k.lay, units, offsets, capacity, model.sparse, n_slices, n_threads)
    k.model = model
    k.opt = opt
    k.data = _input(X, X_data, X_indices, X_indptr, Y, sample_weight, &model)
    k.order = &order[0] if order.shape[0] > 0 else NULL
    k.thread_work = _workspace_size(units, capacity, model.sparse)
    k.n_slices = n_slices
    k.n_threads = n_threads

    cdef Py_ssize_t n_samples = order.shape[0], n_params = k.lay.n_params
    cdef Py_ssize_t n_first = units[0] * units[1]   # W1's coefs: [0, n_first)
    # Sparse X: the W1 part is summed and cleared by rows (_move_csr_rows) or
    # densely, as _clear_by_rows decides per batch; sum_from is where the dense
    # sum of the private gradients starts.
    cdef Py_ssize_t sum_from = 0
    cdef bint by_rows = False, dense_clear = False
    cdef bint interrupted = False
    # lazy_sparse (sparse X only): a batch's features (_lazy_first_layer_step)
    cdef bint lazy = opt.lazy_sparse and model.sparse
    cdef unsigned long long *present = NULL
    cdef Py_ssize_t *features = NULL
    cdef floating *scratch = NULL
    cdef PenaltySums w1_sums, rest
    if step_out.shape[0] != 1:
        raise ValueError("step_out must hold one value")
    if not 1 <= batch_size <= n_samples:
        raise ValueError(f"batch_size must be in [1, {n_samples}], got {batch_size}")
    if (params.shape[0] != n_params or grads.shape[0] != n_params
            or state_1.shape[0] != n_params
            or state_2.shape[0] != (n_params if _uses_second_moment(&opt) else 1)):
        raise ValueError("params, grads and the optimizer state do not fit the network")
    if not 0 <= opt.solver <= SOLVER_ADAGRAD:
        raise ValueError(f"unknown solver code {opt.solver}")
    _check_rows(&k.lay, &model, X, X_indptr, Y.shape[0], capacity)
    _check_targets(&k.lay, &model, Y, sample_weight)
    cdef Py_ssize_t start, stop, n_rows, t, chunk, n_active, batch_index = 0
    cdef double loss_sum = 0.0, batch_loss, weight_sum
    cdef PenaltySums sums
    cdef long long step = opt.step
    cdef Py_ssize_t[::1] pk_offsets
    cdef unsigned char[::1] pk_buf
    k.packed.path = model.matmul_path
    if model.matmul_path != -1:
        if floating is double:
            raise TypeError("bfloat16 products need float32 data, got float64")
        if (model.matmul_path not in BF16_PATH_CODES.values()
                and model.matmul_path not in BF16_TEST_CODES.values()):
            raise ValueError(f"bfloat16 product path {model.matmul_path} is not one of "
                             f"this CPU's: {BF16_PATH_CODES | BF16_TEST_CODES}")
        if split_units:
            raise ValueError("split_units has no bfloat16 products")
    elif _packed_on and not split_units:
        k.packed.path = PACK_FLOAT
    if k.packed.path != -1:
        # Sized once per epoch: the weights' panels and every slice's scratch.
        pk_offsets = np.empty(2 * k.lay.n_layers, dtype=np.intp)
        pk_buf = np.empty(_packed_layout(&k.packed, &k.lay, pk_offsets, model.sparse,
                                         n_slices, sizeof(floating))
                          * (2 if k.packed.path >= 0 else sizeof(floating)) + 64,
                          dtype=np.uint8)
        k.packed.buf = &pk_buf[0]
    if lazy and (split_units or clipping):
        raise ValueError("lazy_sparse does not split units or clip gradients")
    if split_units:
        if k.lay.n_layers != 2 or n_slices < 2 or units[1] < n_slices:
            raise ValueError("split_units needs one hidden layer of >= n_slices units")
        if clipping or _needs_preactivation(&model):
            raise ValueError("split_units does not clip gradients, keep "
                             "pre-activations or apply dropout")
        if work.shape[0] < _unit_split_workspace_size(units, batch_size, n_slices,
                                                      model.sparse):
            raise ValueError("work is too small")
        with nogil:
            interrupted = _train_epoch_unit_split(
                &k, &params[0], &grads[0], &state_1[0], &state_2[0], &work[0],
                n_samples, batch_size, &loss_sum, &step)
        step_out[0] = step
        if interrupted:
            _raise_pending()
        return loss_sum
    if work.shape[0] < workspace_size(units, capacity, n_slices, model.sparse):
        raise ValueError("work is too small")
    cdef floating *extra_grads = &work[0] + n_slices * k.thread_work
    if lazy:
        present = <unsigned long long *> calloc(_ceil_div(units[0], 64),
                                                 sizeof(unsigned long long))
        features = <Py_ssize_t *> malloc(_LAZY_CHUNK * sizeof(Py_ssize_t))
        scratch = <floating *> malloc(4 * _LAZY_CHUNK * units[1] * sizeof(floating))
        if present == NULL or features == NULL or scratch == NULL:
            free(present)
            free(features)
            free(scratch)
            raise MemoryError()

    with nogil:
        if model.sparse:
            # The W1 part of every gradient buffer stays zero outside the rows the
            # current batch touches: cleared after each batch.
            memset(&grads[0], 0, n_first * sizeof(floating))
            for t in range(n_slices - 1):
                memset(extra_grads + t * n_params, 0, n_first * sizeof(floating))
        sums = _coef_sums(&k.lay, &params[0])
        if lazy:
            w1_sums = _square_and_abs_sums(&params[0], n_first)
        start = 0
        while start < n_samples:
            stop = min(start + batch_size, n_samples)
            n_rows = stop - start
            chunk = _ceil_div(n_rows, n_slices)
            n_active = _ceil_div(n_rows, chunk)
            if k.packed.path != -1:   # this batch's weights, for all its slices
                _pack_weights(&k.packed, &k.lay, &params[0])
            if model.sparse:
                by_rows = _clear_by_rows(k.data.x_indptr, k.order, start, stop,
                                         units[1], n_first, sizeof(floating))
                by_rows = by_rows or lazy   # lazy steps W1 by rows: keep it zero
                dense_clear = not by_rows
                sum_from = n_first if by_rows else 0
            if n_active == 1:
                batch_loss = _slice_gradient(&k, &params[0], &grads[0], &work[0],
                                             k.order, start, n_rows, False, 0)
            else:
                # One body, run by the calling thread alone or by the team (an
                # OpenMP region costs more than a small batch's slice).
                if n_threads == 1:
                    for t in range(n_active):
                        part_loss[t] = _batch_slice_gradient(
                            &k, &params[0], &grads[0], extra_grads, &work[0], t, start,
                            chunk, n_rows)
                else:
                    for t in prange(n_active, num_threads=min(n_threads, n_active),
                                    schedule="static"):
                        part_loss[t] = _batch_slice_gradient(
                            &k, &params[0], &grads[0], extra_grads, &work[0], t, start,
                            chunk, n_rows)
                batch_loss = 0.0
                for t in range(n_active):
                    batch_loss = batch_loss + part_loss[t]
                if by_rows:
                    for t in range(1, n_active):
                        _move_csr_rows(k.data.x_indices, k.data.x_indptr, k.order,
                                       start + t * chunk, min(chunk, n_rows - t * chunk),
                                       units[1], &grads[0],
                                       extra_grads + (t - 1) * n_params)
            weight_sum = _batch_weight_sum(<const floating *> k.data.sample_weight,
                                           k.order, start, stop)
            # The batch loss seen by scikit-learn: data term plus the penalty of the
            # weights used for this batch (sums is kept current below).
            batch_loss = batch_loss / weight_sum + _penalty(&k.model, sums, weight_sum)
            loss_sum += batch_loss * n_rows
            if opt.solver != SOLVER_SGD:
                step += 1
            size = _step_size(&k.opt, step)
            if clipping:
                # The whole gradient first (summed over the slices), then its norm.
                if n_active == 1:
                    sq_norm = _gradient_sq_norm(&k, &params[0], &grads[0], 0, n_params,
                                                weight_sum)
                else:
                    if n_threads == 1:
                        for t in range(n_slices):
                            part_norm[t] = _batch_range_norm(
                                &k, &params[0], &grads[0], extra_grads, t, n_active,
                                sum_from, dense_clear, weight_sum)
                    else:
                        for t in prange(n_slices, num_threads=n_threads,
                                        schedule="static"):
                            part_norm[t] = _batch_range_norm(
                                &k, &params[0], &grads[0], extra_grads, t, n_active,
                                sum_from, dense_clear, weight_sum)
                    sq_norm = 0.0
                    for t in range(n_slices):
                        sq_norm = sq_norm + part_norm[t]
                size.grad_scale = _clip_factor(opt.max_grad_norm, sq_norm)
            if lazy:
                # The W1 rows of the batch's features, then the rest densely (its
                # private gradients are not summed yet: sum_from = n_first).
                if n_active > 1:
                    _sum_gradients(&grads[0], extra_grads, n_params, n_active - 1,
                                   n_first, n_params)
                rest = _lazy_first_layer_step(
                    &k, &params[0], &grads[0], &state_1[0], &state_2[0], start, stop,
                    present, features, scratch, weight_sum, &size)
                w1_sums.sumsq = w1_sums.sumsq + rest.sumsq
                w1_sums.sumabs = w1_sums.sumabs + rest.sumabs
                rest = _update_range(&k, &params[0], &grads[0], &state_1[0],
                                     &state_2[0], n_first, n_params, weight_sum, &size)
                sums.sumsq = w1_sums.sumsq + rest.sumsq
                sums.sumabs = w1_sums.sumabs + rest.sumabs
            elif n_active == 1:
                sums = _update_range(&k, &params[0], &grads[0], &state_1[0],
                                     &state_2[0], 0, n_params, weight_sum, &size)
                if dense_clear:
                    memset(&grads[0], 0, n_first * sizeof(floating))
            elif n_threads == 1:
                for t in range(n_slices):
                    part_sums[t] = _batch_range_update(
                        &k, &params[0], &grads[0], extra_grads, &state_1[0],
                        &state_2[0], t, n_active, sum_from, dense_clear, not clipping,
                        weight_sum, &size)
            else:
                for t in prange(n_slices, num_threads=n_threads, schedule="static"):
                    part_sums[t] = _batch_range_update(
                        &k, &params[0], &grads[0], extra_grads, &state_1[0],
                        &state_2[0], t, n_active, sum_from, dense_clear, not clipping,
                        weight_sum, &size)
            if by_rows:
                _clear_csr_rows(k.data.x_indices, k.data.x_indptr, k.order, start,
                                n_rows, units[1], &grads[0])
            if n_active > 1 and not lazy:
                sums.sumsq = 0.0
                sums.sumabs = 0.0
                for t in range(n_slices):
                    sums.sumsq = sums.sumsq + part_sums[t].sumsq
                    sums.sumabs = sums.sumabs + part_sums[t].sumabs
            start = stop
            batch_index += 1
            if batch_index % SIGNAL_CHECK_INTERVAL == 0:
                # Ctrl-C: stop after this batch, report the steps taken, then raise.
                with gil:
                    interrupted = _check_signals_keep_error() < 0
                if interrupted:
                    break
    free(present)
    free(features)
    free(scratch)
    step_out[0] = step
    if interrupted:
        _raise_pending()
    return loss_sum


cdef inline double _batch_slice_gradient(const Kernel *k, const floating *params,
                                         floating *grads, floating *extra_grads,
                                         floating *work, Py_ssize_t t,
                                         Py_ssize_t start, Py_ssize_t chunk,
                                         Py_ssize_t n_rows) noexcept nogil:
    """Row slice t of the batch k.order[start:start + n_rows]: its raw gradient into
    its own buffer (grads for slice 0), its weighted data loss returned."""
    return _slice_gradient(
        k, params, grads if t == 0 else extra_grads + (t - 1) * k.lay.n_params,
        work + t * k.thread_work, k.order, start + t * chunk,
        min(chunk, n_rows - t * chunk), False, t)


cdef inline Py_ssize_t _range_start(const Kernel *k, Py_ssize_t t) noexcept nogil:
    """Start of parameter range t of k.n_slices (t = k.n_slices: n_params)."""
    return min(t * _ceil_div(k.lay.n_params, k.n_slices), k.lay.n_params)


cdef void _batch_range_sum(const Kernel *k, floating *grads, floating *extra_grads,
                           Py_ssize_t t, Py_ssize_t n_active, Py_ssize_t sum_from,
                           bint dense_clear) noexcept nogil:
    """Parameter range t of k.n_slices after a sliced batch: grads += the other
    slices' gradients, in slice order. With ``dense_clear`` (sparse X) their W1 part
    is cleared on the way; W1 rows moved already (sum_from = n_first) are skipped."""
    cdef Py_ssize_t n_params = k.lay.n_params
    cdef Py_ssize_t n_first = k.lay.units[0] * k.lay.units[1]
    cdef Py_ssize_t lo = _range_start(k, t), hi = _range_start(k, t + 1)
    cdef Py_ssize_t skip = max(sum_from, n_first if dense_clear else 0)
    if dense_clear:
        _sum_and_clear_gradients(grads, extra_grads, n_params, n_active - 1, lo,
                                 max(lo, min(hi, n_first)))
    _sum_gradients(grads, extra_grads, n_params, n_active - 1, max(lo, skip),
                   max(hi, skip))


cdef double _batch_range_norm(const Kernel *k, const floating *params, floating *grads,
                              floating *extra_grads, Py_ssize_t t, Py_ssize_t n_active,
                              Py_ssize_t sum_from, bint dense_clear,
                              double weight_sum) noexcept nogil:
    """_batch_range_sum over range t, then its share of the gradient's squared norm
    (max_grad_norm: the whole gradient is summed before any range steps)."""
    _batch_range_sum(k, grads, extra_grads, t, n_active, sum_from, dense_clear)
    return _gradient_sq_norm(k, params, grads, _range_start(k, t),
                             _range_start(k, t + 1), weight_sum)


cdef PenaltySums _batch_range_update(const Kernel *k, floating *params, floating *grads,
                                     floating *extra_grads, floating *state_1,
                                     floating *state_2, Py_ssize_t t,
                                     Py_ssize_t n_active, Py_ssize_t sum_from,
                                     bint dense_clear, bint summing, double weight_sum,
                                     const StepSize *size) noexcept nogil:
    """Parameter range t of k.n_slices after a sliced batch: the slices' gradients
    summed in slice order (unless done already: ``summing`` False), the optimizer
    step, and (sparse batches cleared densely) the W1 part of the gradients zeroed
    again. Returns the range's penalty sums."""
    cdef Py_ssize_t n_first = k.lay.units[0] * k.lay.units[1]
    cdef Py_ssize_t lo = _range_start(k, t), hi = _range_start(k, t + 1)
    cdef PenaltySums sums
    if summing:
        _batch_range_sum(k, grads, extra_grads, t, n_active, sum_from, dense_clear)
    sums = _update_range(k, params, grads, state_1, state_2, lo, hi, weight_sum,
                         size)
    if dense_clear and lo < n_first:
        memset(grads + lo, 0, (min(hi, n_first) - lo) * sizeof(floating))
    return sums


def loss_gradient(floating[::1] params, floating[::1] grads, floating[::1] work,
                  const Py_ssize_t[::1] units, Model model,
                  const floating[:, :] X, const floating[::1] X_data,
                  const Py_ssize_t[::1] X_indices, const Py_ssize_t[::1] X_indptr,
                  const floating[:, ::1] Y, const floating[::1] sample_weight,
                  Py_ssize_t block_rows, int n_parts, int n_threads):
    """Full-batch loss and gradient (scikit-learn's objective), without the GIL.

    The rows are split into n_parts contiguous parts, each processed in blocks of
    ``block_rows`` into a private gradient; the gradients are summed in part order,
    so the result depends on n_parts, not on the n_threads sharing the parts.
    ``work`` holds ``workspace_size(units, block_rows, n_parts)`` elements, so
    memory stays bounded whatever n_samples is. On return ``grads`` holds the
    gradient of

        loss = sum_i w_i loss_i / sum_i w_i + penalty

    with penalty = (alpha / 2 ||coefs||^2) / sum_i w_i for the MLP convention
    (``penalty_per_batch``) and alpha / 2 ||coefs||^2 otherwise; the loss is
    returned. The L1 term is refused: it is not differentiable.
    """
    cdef double part_loss[MAX_THREADS]
    cdef Kernel k
    cdef Py_ssize_t[::1] offsets = _offsets_for(units)
    if model.l1 != 0:
        raise ValueError("the L1 penalty is not differentiable: use a mini-batch solver")
    if model.matmul_path != -1:
        raise ValueError("bfloat16 products are for the mini-batch epoch only")
    _fill_layout(&k.lay, units, offsets, block_rows, model.sparse, n_parts, n_threads)
    _check_rows(&k.lay, &model, X, X_indptr, Y.shape[0], block_rows)
    _check_targets(&k.lay, &model, Y, sample_weight)
    k.model = model
    k.packed.path = -1   # no packed operands (train_epoch's own)
    k.data = _input(X, X_data, X_indices, X_indptr, Y, sample_weight, &model)
    k.order = NULL
    k.thread_work = _workspace_size(units, block_rows, model.sparse)
    k.n_slices = n_parts
    k.n_threads = n_threads

    cdef Py_ssize_t n_samples = Y.shape[0], n_params = k.lay.n_params
    if params.shape[0] != n_params or grads.shape[0] != n_params:
        raise ValueError("params and grads do not fit the network")
    if work.shape[0] < workspace_size(units, block_rows, n_parts, model.sparse):
        raise ValueError("work is too small")
    cdef floating *extra_grads = &work[0] + n_parts * k.thread_work
    cdef Py_ssize_t part = _ceil_div(n_samples, n_parts)
    cdef Py_ssize_t t, i, lo, hi, start, stop
    cdef double data_loss = 0.0, weight_sum = 0.0, a
    cdef PenaltySums sums
    cdef floating sw
    cdef floating *g

    with nogil:
        for t in prange(n_parts, num_threads=n_threads, schedule="static"):
            lo = min(t * part, n_samples)
            hi = min(lo + part, n_samples)
            g = &grads[0] if t == 0 else extra_grads + (t - 1) * n_params
            memset(g, 0, n_params * sizeof(floating))
            part_loss[t] = 0.0
            start = lo
            while start < hi:
                stop = min(start + block_rows, hi)
                part_loss[t] += _slice_gradient(
                    &k, &params[0], g, &work[0] + t * k.thread_work, NULL, start,
                    stop - start, True, t)
                start = stop
        _sum_gradients(&grads[0], extra_grads, n_params, n_parts - 1, 0, n_params)
        for t in range(n_parts):
            data_loss = data_loss + part_loss[t]
        if model.has_weights:
            for i in range(n_samples):
                weight_sum += sample_weight[i]
        else:
            weight_sum = n_samples
        sw = weight_sum
        a = model.alpha if model.penalty_per_batch else model.alpha * weight_sum
        sums = _coef_sums(&k.lay, &params[0])
        sums.sumabs = 0.0   # no L1 term here (refused above)
        for i in range(n_params):
            if i < k.lay.n_coefs:
                grads[i] = (grads[i] + <floating> a * params[i]) / sw
            elif model.fit_intercept:
                grads[i] = grads[i] / sw
            else:
                grads[i] = 0
    return data_loss / weight_sum + _penalty(&model, sums, weight_sum)


cdef int _check_rows(const Layout *lay, const Model *model, const floating[:, :] X,
                     const Py_ssize_t[::1] X_indptr, Py_ssize_t n_samples,
                     Py_ssize_t block_rows) except -1:
    """The checks of every kernel entry point: X (dense or CSR) holds n_samples
    rows of units[0] features, and blocks hold at least one row."""
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    if model.sparse:
        if X_indptr.shape[0] != n_samples + 1:
            raise ValueError("X_indptr does not fit the number of rows")
    elif X.shape[0] != n_samples or X.shape[1] != lay.units[0]:
        raise ValueError(f"X has shape ({X.shape[0]}, {X.shape[1]}), expected "
                         f"({n_samples}, {lay.units[0]})")
    return 0


cdef int _check_targets(const Layout *lay, const Model *model, const floating[:, ::1] Y,
                        const floating[::1] sample_weight) except -1:
    """The checks train_epoch and loss_gradient share: Y holds one column per
    output, sample_weight (when used) one value per row of Y."""
    if Y.shape[1] != lay.units[lay.n_layers] or (
            model.has_weights and sample_weight.shape[0] != Y.shape[0]):
        raise ValueError("Y or sample_weight do not fit the network and X")
    return 0


def forward(const floating[::1] params, floating[::1] work,
            const Py_ssize_t[::1] units, Model model,
            const floating[:, :] X, const floating[::1] X_data,
            const Py_ssize_t[::1] X_indices, const Py_ssize_t[::1] X_indptr,
            floating[:, ::1] out, Py_ssize_t block_rows, int n_threads):
    """out := network output for every row of X, in blocks, without the GIL.

    Blocks of ``block_rows`` rows are shared among n_threads threads; ``work``
    holds ``workspace_size(units, block_rows, n_threads)`` elements.
    """
    cdef Kernel k
    cdef Py_ssize_t[::1] offsets = _offsets_for(units)
    if model.matmul_path != -1:
        raise ValueError("bfloat16 products are for the mini-batch epoch only")
    # Blocks are independent: any thread may take any block.
    _fill_layout(&k.lay, units, offsets, block_rows, model.sparse, MAX_THREADS,
                 n_threads)
    cdef Py_ssize_t n_samples = out.shape[0]
    _check_rows(&k.lay, &model, X, X_indptr, n_samples, block_rows)
    if out.shape[1] != units[units.shape[0] - 1]:
        raise ValueError("out does not fit the network")
    if params.shape[0] != k.lay.n_params:
        raise ValueError("params do not fit the network")
    k.model = model
    k.packed.path = -1   # no packed operands (train_epoch's own)
    k.data.x = &X[0, 0] if X.shape[0] > 0 else NULL
    k.data.x_col_stride = _column_stride(X)
    k.data.x_data = &X_data[0] if X_data.shape[0] > 0 else NULL
    k.data.x_indices = &X_indices[0] if X_indices.shape[0] > 0 else NULL
    k.data.x_indptr = &X_indptr[0] if X_indptr.shape[0] > 0 else NULL
    k.data.y = NULL
    k.data.sample_weight = NULL
    k.order = NULL
    k.thread_work = _workspace_size(units, block_rows, model.sparse)
    k.n_slices = MAX_THREADS
    k.n_threads = n_threads
    cdef Py_ssize_t n_blocks = _ceil_div(n_samples, block_rows)
    cdef Py_ssize_t b
    if work.shape[0] < n_threads * k.thread_work:
        raise ValueError("work is too small")
    if n_samples == 0:
        return
    with nogil:
        for b in prange(n_blocks, num_threads=n_threads, schedule="static"):
            _forward_block(&k, &params[0], &work[0] + threadid() * k.thread_work,
                           b * block_rows, min(block_rows, n_samples - b * block_rows),
                           &out[0, 0])


cdef void _forward_block(const Kernel *k, const floating *params, floating *work,
                         Py_ssize_t row_start, Py_ssize_t n_rows,
                         floating *out) noexcept nogil:
    """Output rows row_start .. row_start + n_rows - 1 of the network into out."""
    cdef const Layout *lay = &k.lay
    cdef const Model *model = &k.model
    cdef const floating *inp = NULL
    cdef Py_ssize_t n_out = lay.units[lay.n_layers]
    if model.sparse:
        pass
    elif k.data.x_col_stride != 0:
        _gather_rows(&k.data, <const Py_ssize_t *> NULL, row_start, n_rows,
                     lay.units[0], _acts(lay, work, 0))
        inp = _acts(lay, work, 0)
    else:
        inp = <const floating *> k.data.x + row_start * lay.units[0]
    _forward(lay, params, inp, &k.data if model.sparse else NULL, NULL, row_start, work,
             n_rows, model.hidden_activation, model.output_activation,
             <const Model *> NULL, <const Packed *> NULL, NULL)
    memcpy(out + row_start * n_out, _acts(lay, work, lay.n_layers),
           n_rows * n_out * sizeof(floating))
