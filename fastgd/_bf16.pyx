# cython: language_level=3
"""bfloat16 matrix products with float32 accumulation (fastgd/_bf16_gemm.h).

Entry points for tests and benchmarks; the training epoch will call the C functions
directly. Paths, best first: "amx" (AMX tiles), "avx512bf16" (vdpbf16ps), "float32"
(plain C on the same bfloat16-rounded operands). ``FASTGD_BF16_PATH`` forces one;
``bf16_path()`` reports the one in use. "amx_emulated" (the AMX loops on tiles
emulated in C) can be asked for by ``matmul(path=...)`` only, for tests.
"""
import os

import numpy as np

from libc.stdint cimport uint16_t


cdef extern from "_bf16_gemm.h":
    int FGD_BF16_FLOAT32
    int FGD_BF16_AVX512BF16
    int FGD_BF16_AMX
    int FGD_BF16_AMX_EMULATED
    int FGD_BF16_X86
    int fgd_bf16_has_avx512bf16
    int fgd_bf16_has_amx
    void fgd_bf16_detect()
    void fgd_bf16_round(const float *x, uint16_t *out, size_t n) noexcept nogil
    size_t fgd_bf16_packed_a_size(size_t m, size_t k) noexcept nogil
    size_t fgd_bf16_packed_b_size(size_t k, size_t n) noexcept nogil
    void fgd_bf16_pack_a(size_t m, size_t k, const float *a, size_t lda, int trans_a,
                         uint16_t *out) noexcept nogil
    void fgd_bf16_pack_b(size_t k, size_t n, const float *b, size_t ldb, int trans_b,
                         uint16_t *out) noexcept nogil
    void fgd_bf16_gemm_packed(int path, size_t m, size_t n, size_t k, const uint16_t *pa,
                              const uint16_t *pb, float *c, size_t ldc, int beta) noexcept nogil


fgd_bf16_detect()   # once per process, at import: CPU flags and the AMX tile permission

_CODES = {"amx": FGD_BF16_AMX, "avx512bf16": FGD_BF16_AVX512BF16,
          "float32": FGD_BF16_FLOAT32, "amx_emulated": FGD_BF16_AMX_EMULATED}


def available_paths():
    """The bfloat16 product paths this CPU (and OS) runs, best first."""
    paths = []
    if fgd_bf16_has_amx:
        paths.append("amx")
    if fgd_bf16_has_avx512bf16:
        paths.append("avx512bf16")
    paths.append("float32")
    return paths


def _choose_path():
    wanted = os.environ.get("FASTGD_BF16_PATH", "")
    if not wanted:
        return available_paths()[0]
    # The epoch's test paths (fastgd._build.matmul_path): "plain" is this module's
    # "float32" kernel; "amx_emulated" runs here too.
    if wanted == "plain" or (wanted == "amx_emulated" and FGD_BF16_X86):
        return "float32" if wanted == "plain" else wanted
    if wanted not in available_paths():
        raise ImportError(f"FASTGD_BF16_PATH={wanted!r}: this CPU offers {available_paths()}")
    return wanted


_path = _choose_path()


def bf16_path():
    """Name of the path used when none is asked for: "amx", "avx512bf16" or "float32"."""
    return _path


def round_to_bf16(x):
    """float32 -> bfloat16 bit patterns (uint16, same shape), round to nearest even."""
    cdef float[::1] xv = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    out = np.empty(xv.shape[0], dtype=np.uint16)
    cdef uint16_t[::1] ov = out
    if xv.shape[0]:
        with nogil:
            fgd_bf16_round(&xv[0], &ov[0], xv.shape[0])
    return out.reshape(np.shape(x))


def bf16_to_float32(h):
    """bfloat16 bit patterns -> float32 (exact)."""
    return (np.asarray(h, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


cdef class PackedB:
    """op(B) (k x n) rounded to bfloat16 in the VNNI pair panels of _bf16_gemm.h."""
    cdef readonly size_t k, n
    cdef readonly object data

    def __init__(self, b, trans_b=False):
        b = _float32_matrix(b, "b")
        self.k, self.n = (b.shape[1], b.shape[0]) if trans_b else b.shape
        self.data = np.empty(fgd_bf16_packed_b_size(self.k, self.n), dtype=np.uint16)
        cdef float[:, ::1] bv = b
        cdef uint16_t[::1] out = self.data
        cdef size_t k = self.k, n = self.n, ldb = b.shape[1]
        cdef int tb = bool(trans_b)
        if b.size:
            with nogil:
                fgd_bf16_pack_b(k, n, &bv[0, 0], ldb, tb, &out[0])
        else:
            self.data[:] = 0


def pack_b(b, trans_b=False):
    """Pack op(B) once, for several matmul calls (e.g. one per row slice of A)."""
    return PackedB(b, trans_b)


def _float32_matrix(x, name):
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 2:
        raise TypeError(f"{name} must be a 2-D float32 array, got {x.dtype} with shape {x.shape}")
    return np.ascontiguousarray(x)


def matmul(a, b, trans_a=False, trans_b=False, path=None, out=None, beta=0):
    """C := op(A) @ op(B) (+ out when beta == 1) with bfloat16 inputs, float32 sums.

    a, b: 2-D float32 arrays (b may be a PackedB, then trans_b is ignored); op
    transposes when trans_a / trans_b. Returns float32 C (``out`` when given).
    """
    if path is None:
        path = _path
    if path not in _CODES or (path != "amx_emulated" and path not in available_paths()):
        raise ValueError(f"path {path!r} is not available: {available_paths()}")
    if path == "amx_emulated" and not FGD_BF16_X86:
        raise ValueError("path 'amx_emulated' needs x86-64")
    if beta not in (0, 1):
        raise ValueError(f"beta must be 0 or 1, got {beta!r}")
    a = _float32_matrix(a, "a")
    pb = b if isinstance(b, PackedB) else PackedB(b, trans_b)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    if k != pb.k:
        raise ValueError(f"inner dimensions differ: op(a) is {m} x {k}, op(b) is {pb.k} x {pb.n}")
    n = pb.n
    if out is None:
        if beta:
            raise ValueError("beta=1 needs out")
        out = np.empty((m, n), dtype=np.float32)
    elif (out.dtype != np.float32 or out.shape != (m, n) or not out.flags.c_contiguous
          or not out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous float32 array of shape {(m, n)}")
    if m == 0 or n == 0:
        return out
    if k == 0:
        if not beta:
            out[...] = 0
        return out
    packed_a = np.empty(fgd_bf16_packed_a_size(m, k), dtype=np.uint16)
    cdef float[:, ::1] av = a
    cdef uint16_t[::1] pav = packed_a
    cdef uint16_t[::1] pbv = pb.data
    cdef float[:, ::1] cv = out
    cdef size_t mm = m, nn = n, kk = k, lda = a.shape[1]
    cdef int ta = bool(trans_a), code = _CODES[path], bt = beta
    with nogil:
        fgd_bf16_pack_a(mm, kk, &av[0, 0], lda, ta, &pav[0])
        fgd_bf16_gemm_packed(code, mm, nn, kk, &pav[0], &pbv[0], &cv[0, 0], nn, bt)
    return out
