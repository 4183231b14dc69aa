/* Small matrix products without BLAS (GCC or clang: vector extensions).
 *
 * Used for the backward product through a layer, delta @ W^T, when it is small. For
 * that shape OpenBLAS's small-matrix kernel was slow (with a 10-unit output layer it
 * cost as much as the 100 x 100 forward product), and two threads calling BLAS at
 * once barely beat one. Batch 32, 50k x 100 -> 100 -> 10, float32, ms per epoch,
 * 1 / 2 threads: all BLAS 46 / 41; this for delta @ W^T 44 / 37; this for every
 * product 56 / 41 (OpenBLAS's NN and TN small kernels are faster than this one).
 *
 * Row-major C (m x n) := op(A) @ op(B) (+ C if accumulate), op = as stored ('N') or
 * transposed ('T'), with leading dimensions as in BLAS. The core keeps a 4 x 2-vector
 * block of C in registers over the whole k loop: each step loads two vectors of a row
 * of op(B) and broadcasts four entries of op(A). op(B) = B^T is first copied to
 * `scratch` (k x n) so that its rows are contiguous, and the last n % lanes columns
 * to a zero-padded k x lanes block after it. GCC vector extensions: the
 * AVX2 + FMA build makes them 8-float / 4-double registers with fused multiply-adds.
 *
 * Every entry of C is a sum over p = 0..k-1 in that order, whatever m, n and the
 * block position (with the AVX2 build, as fused multiply-adds everywhere): the result
 * of a row does not depend on the other rows.
 */
#ifndef FASTGD_SMALL_GEMM_H
#define FASTGD_SMALL_GEMM_H

#include <stddef.h>

#define FGD_SMALL_GEMM(name, type, lanes)                                              \
    /* Unaligned (element-aligned) and allowed to alias the element type: loads and \
     * stores straight from the matrices (memcpy went through the stack). */         \
    typedef type name##_vec __attribute__((vector_size(lanes * sizeof(type)),          \
                                           aligned(sizeof(type)), may_alias));         \
    static inline name##_vec name##_load(const type *p)                                \
    {                                                                                  \
        return *(const name##_vec *) p;                                                \
    }                                                                                  \
    static inline void name##_store(type *p, name##_vec v, int accumulate)             \
    {                                                                                  \
        if (accumulate)                                                                \
            v += name##_load(p);                                                       \
        *(name##_vec *) p = v;                                                         \
    }                                                                                  \
    /* A 4-row block of C, columns j .. j + n_vec * lanes - 1 (n_vec = 1 or 2), from      \
     * pa (A(i, 0) of the block's first row; next row + a_row, next p + a_col) and pb   \
     * (row p = 0 of op(B) at column j; next p + ldb). Pointer steps only, so the      \
     * loop keeps everything in registers. */                                          \
    static inline void name##_block(int n_vec, ptrdiff_t k, const type *pa,            \
                                    ptrdiff_t a_row, ptrdiff_t a_col, const type *pb,  \
                                    ptrdiff_t ldb, type *pc, ptrdiff_t ldc,            \
                                    int accumulate)                                    \
    {                                                                                  \
        name##_vec c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};                         \
        name##_vec c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};                         \
        const ptrdiff_t a_row3 = 3 * a_row;                                            \
        if (n_vec == 2) {                                                              \
            for (ptrdiff_t p = 0; p < k; p++, pa += a_col, pb += ldb) {                \
                name##_vec b0 = name##_load(pb), b1 = name##_load(pb + lanes);         \
                type x0 = pa[0], x1 = pa[a_row], x2 = pa[2 * a_row], x3 = pa[a_row3];  \
                c00 += x0 * b0; c01 += x0 * b1;                                        \
                c10 += x1 * b0; c11 += x1 * b1;                                        \
                c20 += x2 * b0; c21 += x2 * b1;                                        \
                c30 += x3 * b0; c31 += x3 * b1;                                        \
            }                                                                          \
            name##_store(pc + lanes, c01, accumulate);                                 \
            name##_store(pc + ldc + lanes, c11, accumulate);                           \
            name##_store(pc + 2 * ldc + lanes, c21, accumulate);                       \
            name##_store(pc + 3 * ldc + lanes, c31, accumulate);                       \
        } else {                                                                       \
            for (ptrdiff_t p = 0; p < k; p++, pa += a_col, pb += ldb) {                \
                name##_vec b0 = name##_load(pb);                                       \
                c00 += pa[0] * b0; c10 += pa[a_row] * b0;                              \
                c20 += pa[2 * a_row] * b0; c30 += pa[a_row3] * b0;                     \
            }                                                                          \
        }                                                                              \
        name##_store(pc, c00, accumulate);                                             \
        name##_store(pc + ldc, c10, accumulate);                                       \
        name##_store(pc + 2 * ldc, c20, accumulate);                                   \
        name##_store(pc + 3 * ldc, c30, accumulate);                                   \
    }                                                                                  \
    static void name(char trans_a, char trans_b, ptrdiff_t m, ptrdiff_t n,             \
                     ptrdiff_t k, const type *a, ptrdiff_t lda, const type *b,         \
                     ptrdiff_t ldb, type *c, ptrdiff_t ldc, int accumulate,            \
                     type *scratch)                                                    \
    {                                                                                  \
        ptrdiff_t a_row = trans_a == 'N' ? lda : 1, a_col = trans_a == 'N' ? 1 : lda;  \
        if (trans_b != 'N') { /* rows of op(B) = B^T made contiguous */                \
            for (ptrdiff_t j = 0; j < n; j++)                                          \
                for (ptrdiff_t p = 0; p < k; p++)                                      \
                    scratch[p * n + j] = b[j * ldb + p];                               \
            b = scratch;                                                               \
            ldb = n;                                                                   \
            scratch += n * k;                                                          \
        }                                                                              \
        /* The last n % lanes columns of op(B), zero-padded to a vector, so that they  \
         * too go through the vector blocks (their extra lanes are discarded). */      \
        const ptrdiff_t full = n - n % lanes;                                          \
        type *tail = scratch;                                                          \
        if (full < n) {                                                                \
            for (ptrdiff_t p = 0; p < k; p++)                                          \
                for (ptrdiff_t q = 0; q < lanes; q++)                                  \
                    tail[p * lanes + q] = full + q < n ? b[p * ldb + full + q] : 0;    \
        }                                                                              \
        ptrdiff_t i = 0;                                                               \
        for (; i + 4 <= m; i += 4) {                                                   \
            const type *pa = a + i * a_row;                                            \
            type *pc = c + i * ldc;                                                    \
            ptrdiff_t j = 0;                                                           \
            for (; j + 2 * lanes <= full; j += 2 * lanes)                              \
                name##_block(2, k, pa, a_row, a_col, b + j, ldb, pc + j, ldc,          \
                             accumulate);                                              \
            for (; j < full; j += lanes)                                               \
                name##_block(1, k, pa, a_row, a_col, b + j, ldb, pc + j, ldc,          \
                             accumulate);                                              \
            if (full < n) {                                                            \
                type block[4 * lanes];                                                 \
                name##_block(1, k, pa, a_row, a_col, tail, lanes, block, lanes, 0);    \
                for (ptrdiff_t r = 0; r < 4; r++)                                      \
                    for (ptrdiff_t q = 0; q < n - full; q++)                           \
                        pc[r * ldc + full + q] = accumulate ?                          \
                            pc[r * ldc + full + q] + block[r * lanes + q] :            \
                            block[r * lanes + q];                                      \
            }                                                                          \
        }                                                                              \
        for (; i < m; i++) { /* row tail */                                            \
            const type *pa = a + i * a_row;                                            \
            for (ptrdiff_t j = 0; j < n; j++) {                                        \
                type s = 0;                                                            \
                for (ptrdiff_t p = 0; p < k; p++)                                      \
                    s += pa[p * a_col] * b[p * ldb + j];                               \
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;                  \
            }                                                                          \
        }                                                                              \
    }

FGD_SMALL_GEMM(fgd_small_sgemm, float, 8)
FGD_SMALL_GEMM(fgd_small_dgemm, double, 4)

#endif
