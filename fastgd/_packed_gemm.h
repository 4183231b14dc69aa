/* float32 / float64 matrix products on packed operands (GCC or clang: vector extensions).
 *
 * The training epoch's large products (forward A @ W, weight gradient A^T @ delta) with
 * the weights packed ONCE per batch and shared read-only by every row slice, as the
 * bfloat16 path does (fastgd/_bf16_gemm.h). OpenBLAS repacks W for each slice's call,
 * and for 100-row slices x 784 x 100 its packing took a third of its kernel's time
 * (benchmarks/NOTES.md).
 *
 * Row-major C (m x n) := op(A) @ op(B) (+ C when accumulate), op(A) m x k, op(B) k x n.
 * Packed layouts (type elements, zero-padded):
 *  - op(B): panels of NR = 2 vectors of columns; panel jp holds rows p = 0..k-1 of its
 *    NR columns, one after the other (k * NR elements).
 *    So any k range [p0, p1) of a panel is contiguous: the k blocking needs no repacking.
 *  - op(A) is read as stored, A or A^T (packing it cost 15% of the products, its 6-row
 *    blocks sit in L1 anyway).
 *
 * The micro-kernel keeps a 6 x NR block of C in 12 vector registers (AVX2: 6 x 16
 * floats / 6 x 8 doubles), loads two vectors of a packed B row and broadcasts six A
 * entries per step (one vector for the last panel when at most `lanes` columns are
 * left: n = 100 wastes 4 columns, not 12). With the AVX2 + FMA build (fastgd/_kernels_avx2) those are ymm
 * registers and fused multiply-adds; the baseline build gets the same arithmetic on
 * pairs of SSE registers (slower: fastgd/_kernels.pyx keeps OpenBLAS there).
 *
 * Numerics: C(i, j) = [C(i, j) +] s_0 + s_1 + ... where s_b is the sum over the k block b
 * (fgd_packed_kc: it depends on k only), summed in p order as one multiply-add chain
 * from zero. The result of an entry depends on m, n, k and the values only, never on
 * which block or row slice it is in.
 */
#ifndef FASTGD_PACKED_GEMM_H
#define FASTGD_PACKED_GEMM_H

#include <stddef.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#define FGD_PACKED_FAST 1   /* this build's packed products beat OpenBLAS's (NOTES.md) */
#else
#define FGD_PACKED_FAST 0
#endif

#define FGD_PACKED_MR 6

/* The k block: at most 256 rows of a B panel (16 KB, in L1), k split evenly. */
static inline size_t fgd_packed_kc(size_t k)
{
    size_t blocks = (k + 255) / 256;
    return blocks ? (k + blocks - 1) / blocks : 1;
}

#define FGD_PACKED_GEMM(name, type, lanes, mc)                                            \
    typedef type name##_vec __attribute__((vector_size(lanes * sizeof(type)),            \
                                           aligned(sizeof(type)), may_alias));           \
    enum { name##_NR = 2 * lanes };                                                      \
    static inline size_t name##_packed_b_size(size_t k, size_t n)                        \
    {                                                                                    \
        return (k ? k : 1) * ((n + name##_NR - 1) / name##_NR * name##_NR);              \
    }                                                                                    \
    /* op(B) (B(p, j) = b[p * ldb + j], or b[j * ldb + p] when trans_b) into panels. */ \
    static void name##_pack_b(size_t k, size_t n, const type *b, size_t ldb, int trans_b, \
                              type *out)                                                 \
    {                                                                                    \
        const size_t NR = name##_NR;                                                     \
        for (size_t j0 = 0; j0 < n; j0 += NR) {                                          \
            size_t w = n - j0 < NR ? n - j0 : NR;                                        \
            type *o = out + j0 * k;                                                      \
            if (!trans_b && w == NR) {   /* two vector copies a row (memcpy was a call) */ \
                for (size_t p = 0; p < k; p++, o += NR) {                                \
                    const type *src = b + p * ldb + j0;                                  \
                    *(name##_vec *) o = *(const name##_vec *) src;                       \
                    *(name##_vec *) (o + lanes) = *(const name##_vec *) (src + lanes);   \
                }                                                                        \
            } else if (!trans_b) {                                                       \
                for (size_t p = 0; p < k; p++, o += NR)                                  \
                    for (size_t j = 0; j < NR; j++)                                      \
                        o[j] = j < w ? b[p * ldb + j0 + j] : 0;                          \
            } else {                                                                     \
                for (size_t j = 0; j < NR; j++)                                          \
                    for (size_t p = 0; p < k; p++)                                       \
                        o[p * NR + j] = j < w ? b[(j0 + j) * ldb + p] : 0;               \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    static inline name##_vec name##_load(const type *p) { return *(const name##_vec *) p; } \
    static inline void name##_put(type *p, name##_vec v, int acc)                        \
    {                                                                                    \
        if (acc)                                                                         \
            v += name##_load(p);                                                         \
        *(name##_vec *) p = v;                                                           \
    }                                                                                    \
    /* C block (h <= MR rows, w <= NR columns) [+]= A block @ packed B panel over kb  \
     * rows of k. A(r, p) = a[r * a_row + p * a_col]: as stored (no packing; the       \
     * rows past h read row h - 1 again, their sums are dropped). w <= lanes: one       \
     * vector per row (the last panel of n, half the work). */                          \
    static void name##_micro(size_t kb, const type *a, ptrdiff_t a_row, ptrdiff_t a_col, \
                             const type *pb, type *c, size_t ldc, size_t h, size_t w,   \
                             int acc)                                                    \
    {                                                                                    \
        name##_vec c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};     \
        name##_vec c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};     \
        const type *a0 = a, *a1 = a + (h > 1) * a_row, *a2 = a + (h > 2 ? 2 : h - 1) * a_row; \
        const type *a3 = a + (h > 3 ? 3 : h - 1) * a_row;                                \
        const type *a4 = a + (h > 4 ? 4 : h - 1) * a_row;                                \
        const type *a5 = a + (h > 5 ? 5 : h - 1) * a_row;                                \
        if (w > lanes) {                                                                 \
            for (size_t p = 0; p < kb; p++, pb += name##_NR) {                           \
                name##_vec b0 = name##_load(pb), b1 = name##_load(pb + lanes);           \
                type x;                                                                  \
                x = *a0; c00 += x * b0; c01 += x * b1; a0 += a_col;                      \
                x = *a1; c10 += x * b0; c11 += x * b1; a1 += a_col;                      \
                x = *a2; c20 += x * b0; c21 += x * b1; a2 += a_col;                      \
                x = *a3; c30 += x * b0; c31 += x * b1; a3 += a_col;                      \
                x = *a4; c40 += x * b0; c41 += x * b1; a4 += a_col;                      \
                x = *a5; c50 += x * b0; c51 += x * b1; a5 += a_col;                      \
            }                                                                            \
        } else {                                                                         \
            for (size_t p = 0; p < kb; p++, pb += name##_NR) {                           \
                name##_vec b0 = name##_load(pb);                                         \
                c00 += *a0 * b0; a0 += a_col; c10 += *a1 * b0; a1 += a_col;              \
                c20 += *a2 * b0; a2 += a_col; c30 += *a3 * b0; a3 += a_col;              \
                c40 += *a4 * b0; a4 += a_col; c50 += *a5 * b0; a5 += a_col;              \
            }                                                                            \
        }                                                                                \
        if (h == FGD_PACKED_MR && w == name##_NR) {                                      \
            name##_put(c, c00, acc); name##_put(c + lanes, c01, acc); c += ldc;          \
            name##_put(c, c10, acc); name##_put(c + lanes, c11, acc); c += ldc;          \
            name##_put(c, c20, acc); name##_put(c + lanes, c21, acc); c += ldc;          \
            name##_put(c, c30, acc); name##_put(c + lanes, c31, acc); c += ldc;          \
            name##_put(c, c40, acc); name##_put(c + lanes, c41, acc); c += ldc;          \
            name##_put(c, c50, acc); name##_put(c + lanes, c51, acc);                    \
            return;                                                                      \
        }                                                                                \
        type t[FGD_PACKED_MR * name##_NR];                                               \
        name##_put(t, c00, 0); name##_put(t + lanes, c01, 0);                            \
        name##_put(t + 2 * lanes, c10, 0); name##_put(t + 3 * lanes, c11, 0);            \
        name##_put(t + 4 * lanes, c20, 0); name##_put(t + 5 * lanes, c21, 0);            \
        name##_put(t + 6 * lanes, c30, 0); name##_put(t + 7 * lanes, c31, 0);            \
        name##_put(t + 8 * lanes, c40, 0); name##_put(t + 9 * lanes, c41, 0);            \
        name##_put(t + 10 * lanes, c50, 0); name##_put(t + 11 * lanes, c51, 0);          \
        for (size_t r = 0; r < h; r++)                                                   \
            for (size_t j = 0; j < w; j++)                                               \
                c[r * ldc + j] = acc ? c[r * ldc + j] + t[r * name##_NR + j]             \
                                     : t[r * name##_NR + j];                             \
    }                                                                                    \
    /* C (m x n, row stride ldc) [+]= op(A) (m x k, as stored: A(i, p) = a[i * lda + p], \
     * or a[p * lda + i] when trans_a) @ packed op(B) (k x n).                           \
     * Blocks: k by fgd_packed_kc (a B panel's block stays in L1), m by mc rows (the    \
     * A block stays in L2); every B panel's block meets every 6-row A block of the m   \
     * block. */                                                                         \
    static void name##_gemm(size_t m, size_t n, size_t k, const type *a, size_t lda,     \
                            int trans_a, const type *pb, type *c, size_t ldc,            \
                            int accumulate)                                              \
    {                                                                                    \
        const size_t MR = FGD_PACKED_MR, NR = name##_NR, kc = fgd_packed_kc(k);          \
        const ptrdiff_t a_row = trans_a ? 1 : (ptrdiff_t) lda;                           \
        const ptrdiff_t a_col = trans_a ? (ptrdiff_t) lda : 1;                           \
        if (k == 0) {                                                                    \
            for (size_t i = 0; i < m && !accumulate; i++)                                \
                memset(c + i * ldc, 0, n * sizeof(type));                                \
            return;                                                                      \
        }                                                                                \
        for (size_t p0 = 0; p0 < k; p0 += kc) {                                          \
            size_t kb = k - p0 < kc ? k - p0 : kc;                                       \
            int acc = accumulate || p0 > 0;                                              \
            for (size_t i0 = 0; i0 < m; i0 += mc) {                                      \
                size_t i1 = m - i0 < mc ? m : i0 + mc;                                   \
                for (size_t j = 0; j < n; j += NR) {                                     \
                    const type *b = pb + j * k + p0 * NR;                                \
                    for (size_t i = i0; i < i1; i += MR)                                 \
                        name##_micro(kb, a + i * a_row + p0 * a_col, a_row, a_col, b,    \
                                     c + i * ldc + j, ldc, m - i < MR ? m - i : MR,      \
                                     n - j < NR ? n - j : NR, acc);                      \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    }

/* AVX2: 8 floats / 4 doubles per vector. m blocks: 240 rows x 256 k x 4 bytes (and
 * 120 x 256 x 8) = 240 KB, half of L2. */
FGD_PACKED_GEMM(fgd_packed_s, float, 8, 240)
FGD_PACKED_GEMM(fgd_packed_d, double, 4, 120)

#endif
