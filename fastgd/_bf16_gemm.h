/* bfloat16 matrix products with float32 accumulation (x86-64, GCC or clang).
 *
 * Row-major C (m x n) := op(A) @ op(B) (+ C when beta == 1), op(A) m x k, op(B) k x n,
 * op = as stored or transposed. The inputs are float32; they are rounded to bfloat16
 * (round to nearest even, NaN kept quiet) when packed, and every product is summed in
 * float32. bfloat16 values are held as uint16 bit patterns (the top half of a float).
 *
 * Packed layouts, shared by all three paths (so a packed panel serves any of them):
 *  - op(B): panels of 16 columns; panel jp holds, for each pair q of k rows, the 16
 *    columns' (B(2q, j), B(2q+1, j)) pairs: 64 bytes per pair = one row of an AMX B
 *    tile and one zmm for vdpbf16ps (the "VNNI pair" layout). k is padded with zero
 *    rows to a multiple of 32 (one AMX tile step), n to a multiple of 32 columns.
 *    Packed ONCE per operand: a caller can reuse it across row slices of A.
 *  - op(A): bfloat16 rows of length k_pad (zero-padded), m padded to a multiple of 32
 *    rows: an AMX A tile is 16 of these rows x 64 bytes; vdpbf16ps broadcasts a pair.
 *
 * Paths: AMX tiles (tdpbf16ps), AVX512-BF16 (vdpbf16ps), plain C. The AMX and AVX-512
 * code carries target attributes instead of module-wide -m flags, so this module's own
 * glue (and the plain path) runs on any x86-64 CPU; only the kernels chosen after the
 * CPU check execute AMX / AVX-512 instructions.
 *
 * Numerics: tdpbf16ps and vdpbf16ps treat bfloat16 denormal inputs as zero and flush
 * denormal results (Intel SDM); the plain path does not. All paths sum the k products
 * of an entry in float32 but in different orders (pairs, k blocks): results agree to
 * float32 accumulation-order differences, not bit for bit across paths.
 */
#ifndef FASTGD_BF16_GEMM_H
#define FASTGD_BF16_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FGD_BF16_NO_KERNELS: setup.py's compiler probe failed (no AMX / AVX512-BF16
 * intrinsics): only the plain path and the rounding are compiled. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) \
    && !defined(FGD_BF16_NO_KERNELS)
#define FGD_BF16_X86 1
#include <immintrin.h>
#include <unistd.h>
#include <sys/syscall.h>
#else
#define FGD_BF16_X86 0
#endif

#define FGD_TGT_AVX512 __attribute__((target("avx512f,avx512bw")))
#define FGD_TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define FGD_TGT_AMX __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))

enum { FGD_BF16_FLOAT32 = 0, FGD_BF16_AVX512BF16 = 1, FGD_BF16_AMX = 2,
       FGD_BF16_AMX_EMULATED = 3 /* tests only: the AMX blocking on emulated tiles */ };

static inline size_t fgd_round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }
static inline size_t fgd_bf16_k_pad(size_t k) { return fgd_round_up(k ? k : 1, 32); }
static inline size_t fgd_bf16_n_pad(size_t n) { return fgd_round_up(n ? n : 1, 32); }
static inline size_t fgd_bf16_m_pad(size_t m) { return fgd_round_up(m ? m : 1, 32); }
/* Sizes of the packed operands, in uint16 elements. */
static inline size_t fgd_bf16_packed_b_size(size_t k, size_t n)
{ return fgd_bf16_k_pad(k) * fgd_bf16_n_pad(n); }
static inline size_t fgd_bf16_packed_a_size(size_t m, size_t k)
{ return fgd_bf16_m_pad(m) * fgd_bf16_k_pad(k); }

/* ---- rounding -------------------------------------------------------------------- */

/* float32 -> bfloat16, round to nearest even. Adding 0x7fff plus the lowest kept bit
 * rounds the dropped half to nearest, ties to even; a carry out of the mantissa bumps
 * the exponent (up to inf), as rounding should. NaN would carry into the sign or turn
 * into inf, so it is truncated and its quiet bit set instead. Denormals need no care. */
static inline uint16_t fgd_bf16_round1(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t) ((u >> 16) | 0x0040u);
    return (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float fgd_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t) h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#if FGD_BF16_X86
/* The same integer rounding 16 at a time (vcvtne2ps2bf16 would treat denormal inputs
 * as zero, so it is not used). */
FGD_TGT_AVX512 static void fgd_bf16_round_avx512(const float *x, uint16_t *out, size_t n)
{
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i quiet = _mm512_set1_epi32(0x0040);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512((const void *) (x + i));
        __m512i hi = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(hi, one))), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        r = _mm512_mask_or_epi32(r, nan, hi, quiet);
        _mm256_storeu_si256((__m256i *) (out + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < n; i++)
        out[i] = fgd_bf16_round1(x[i]);
}
#endif

/* ---- CPU detection --------------------------------------------------------------- */

static int fgd_bf16_has_avx512 = 0;   /* avx512f + avx512bw: the vector rounding */
static int fgd_bf16_has_avx512bf16 = 0;
static int fgd_bf16_has_amx = 0;      /* CPU has it AND the kernel granted the tile state */

/* Once per process (the caller holds the GIL). Linux hands out the AMX tile data state
 * (8 KB of XSAVE area per thread) only on request: ARCH_REQ_XCOMP_PERM (0x1023) for
 * XFEATURE_XTILEDATA (18). The permission is per process, so every thread may then
 * use the tiles. */
static void fgd_bf16_detect(void)
{
#if FGD_BF16_X86
    __builtin_cpu_init();
    fgd_bf16_has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    fgd_bf16_has_avx512bf16 = fgd_bf16_has_avx512 && __builtin_cpu_supports("avx512bf16");
    fgd_bf16_has_amx = 0;
#if defined(__linux__) && defined(SYS_arch_prctl)
    if (fgd_bf16_has_avx512bf16 && __builtin_cpu_supports("amx-tile")
        && __builtin_cpu_supports("amx-bf16"))
        fgd_bf16_has_amx = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#endif
#endif
}

static void fgd_bf16_round(const float *x, uint16_t *out, size_t n)
{
#if FGD_BF16_X86
    if (fgd_bf16_has_avx512) {
        fgd_bf16_round_avx512(x, out, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        out[i] = fgd_bf16_round1(x[i]);
}

/* ---- packing --------------------------------------------------------------------- */

#if FGD_BF16_X86
/* Rounded bfloat16 of 16 floats in the low halves of 32-bit lanes. */
FGD_TGT_AVX512 static inline __m512i fgd_bf16_round_lanes(__m512i u)
{
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(
        u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1)))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x0040));
}

/* op(A) = A^T as stored (a is k x m): rows p and p+1 of a, 16 columns i at a time,
 * give the pairs (A(i, p), A(i, p+1)) of 16 packed rows: one 32-bit scatter. */
FGD_TGT_AVX512 static void fgd_bf16_pack_a_trans_avx512(size_t m, size_t k, const float *a,
                                                        size_t lda, uint16_t *out)
{
    const size_t kp = fgd_bf16_k_pad(k);
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                              11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int) (kp / 2)));
    for (size_t i = 0; i < m; i += 16) {
        __mmask16 mask = m - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (m - i)) - 1);
        for (size_t p = 0; p < k; p += 2) {
            __m512i r0 = fgd_bf16_round_lanes(_mm512_maskz_loadu_epi32(mask, a + p * lda + i));
            __m512i r1 = p + 1 < k
                ? fgd_bf16_round_lanes(_mm512_maskz_loadu_epi32(mask, a + (p + 1) * lda + i))
                : _mm512_setzero_si512();
            _mm512_mask_i32scatter_epi32((void *) (out + i * kp + p), mask, rows,
                                         _mm512_or_si512(r0, _mm512_slli_epi32(r1, 16)), 4);
        }
    }
}
#endif

/* op(A) (m x k; A(i, p) = a[i * lda + p], or a[p * lda + i] when trans_a) into
 * m_pad x k_pad bfloat16 rows, zero-padded. The transposed case walks 32 x 32 blocks
 * so that both the reads and the writes stay within a few cache lines. */
static void fgd_bf16_pack_a(size_t m, size_t k, const float *a, size_t lda, int trans_a,
                            uint16_t *out)
{
    const size_t kp = fgd_bf16_k_pad(k), mp = fgd_bf16_m_pad(m);
    if (!trans_a) {
        for (size_t i = 0; i < m; i++) {
            fgd_bf16_round(a + i * lda, out + i * kp, k);
            memset(out + i * kp + k, 0, (kp - k) * sizeof(uint16_t));
        }
    } else {
#if FGD_BF16_X86
        if (fgd_bf16_has_avx512 && kp / 2 * 16 < 0x7fffffff) {   /* int32 scatter offsets */
            fgd_bf16_pack_a_trans_avx512(m, k, a, lda, out);
            for (size_t i = 0; i < m; i++)
                memset(out + i * kp + k, 0, (kp - k) * sizeof(uint16_t));
            memset(out + m * kp, 0, (mp - m) * kp * sizeof(uint16_t));
            return;
        }
#endif
        for (size_t p0 = 0; p0 < k; p0 += 32)
            for (size_t i0 = 0; i0 < m; i0 += 32) {
                size_t p1 = p0 + 32 < k ? p0 + 32 : k, i1 = i0 + 32 < m ? i0 + 32 : m;
                for (size_t p = p0; p < p1; p++)
                    for (size_t i = i0; i < i1; i++)
                        out[i * kp + p] = fgd_bf16_round1(a[p * lda + i]);
            }
        for (size_t i = 0; i < m; i++)
            memset(out + i * kp + k, 0, (kp - k) * sizeof(uint16_t));
    }
    memset(out + m * kp, 0, (mp - m) * kp * sizeof(uint16_t));
}

#if FGD_BF16_X86
/* op(B) = B as stored: rows 2q and 2q+1, 16 columns at a time, rounded into 32-bit
 * lanes: r0 | r1 << 16 is the panel's pair row as it is (64 bytes, one store). */
FGD_TGT_AVX512 static void fgd_bf16_pack_b_rows_avx512(size_t k, size_t n, const float *b,
                                                       size_t ldb, uint16_t *out)
{
    const size_t kp = fgd_bf16_k_pad(k), panel = kp * 16;
    for (size_t p = 0; p < k; p += 2)
        for (size_t j = 0; j < n; j += 16) {
            __mmask16 mask = n - j >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - j)) - 1);
            __m512i r0 = fgd_bf16_round_lanes(_mm512_maskz_loadu_epi32(mask, b + p * ldb + j));
            __m512i r1 = p + 1 < k
                ? fgd_bf16_round_lanes(_mm512_maskz_loadu_epi32(mask, b + (p + 1) * ldb + j))
                : _mm512_setzero_si512();
            _mm512_storeu_si512((void *) (out + (j / 16) * panel + (p / 2) * 32),
                                _mm512_or_si512(r0, _mm512_slli_epi32(r1, 16)));
        }
}
#endif

/* op(B) (k x n; B(p, j) = b[p * ldb + j], or b[j * ldb + p] when trans_b) into the
 * 16-column VNNI pair panels described at the top, zero-padded. */
static void fgd_bf16_pack_b(size_t k, size_t n, const float *b, size_t ldb, int trans_b,
                            uint16_t *out)
{
    const size_t kp = fgd_bf16_k_pad(k), np = fgd_bf16_n_pad(n);
    const size_t panel = kp * 16;   /* elements per 16-column panel */
    memset(out, 0, kp * np * sizeof(uint16_t));
    if (!trans_b) {
#if FGD_BF16_X86
        if (fgd_bf16_has_avx512) {
            fgd_bf16_pack_b_rows_avx512(k, n, b, ldb, out);
            return;
        }
#endif
        for (size_t p = 0; p < k; p++)
            for (size_t j = 0; j < n; j++)
                out[(j / 16) * panel + (p / 2) * 32 + (j % 16) * 2 + (p % 2)]
                    = fgd_bf16_round1(b[p * ldb + j]);
    } else {
        /* Column j of op(B) is row j of b: rounded in one vector pass, its consecutive
         * bfloat16 pairs are the column's 32-bit entries of the panel (every 64 bytes). */
        uint16_t *col = malloc(kp * sizeof(uint16_t));
        if (col) {
            memset(col, 0, kp * sizeof(uint16_t));
            for (size_t j = 0; j < n; j++) {
                fgd_bf16_round(b + j * ldb, col, k);
                uint16_t *o = out + (j / 16) * panel + (j % 16) * 2;
                for (size_t q = 0; q < (k + 1) / 2; q++)
                    memcpy(o + q * 32, col + 2 * q, 2 * sizeof(uint16_t));
            }
            free(col);
            return;
        }
        for (size_t j = 0; j < n; j++) {   /* no memory for the column: element by element */
            uint16_t *o = out + (j / 16) * panel + (j % 16) * 2;
            for (size_t p = 0; p < k; p++)
                o[(p / 2) * 32 + (p % 2)] = fgd_bf16_round1(b[j * ldb + p]);
        }
    }
}

/* ---- plain C path ---------------------------------------------------------------- */

/* Computes in float32 from the same bfloat16 operands as the other paths, so that all
 * paths give one result up to accumulation order. (A CPU without bfloat16 products is
 * better served by float32 sgemm on the unrounded inputs: that is the integration's
 * fallback; this path is the reference and the portable build.) */
static void fgd_bf16_gemm_plain(size_t m, size_t n, size_t k, const uint16_t *pa,
                                const uint16_t *pb, float *c, size_t ldc, int beta)
{
    const size_t kp = fgd_bf16_k_pad(k), panel = kp * 16;
    for (size_t i = 0; i < m; i++) {
        const uint16_t *ar = pa + i * kp;
        for (size_t j0 = 0; j0 < n; j0 += 16) {
            const uint16_t *bp = pb + (j0 / 16) * panel;
            float acc[16] = {0};
            for (size_t q = 0; q < kp / 2; q++) {
                float a0 = fgd_bf16_to_f32(ar[2 * q]), a1 = fgd_bf16_to_f32(ar[2 * q + 1]);
                for (int jj = 0; jj < 16; jj++)
                    acc[jj] += a0 * fgd_bf16_to_f32(bp[q * 32 + 2 * jj])
                               + a1 * fgd_bf16_to_f32(bp[q * 32 + 2 * jj + 1]);
            }
            size_t nj = n - j0 < 16 ? n - j0 : 16;
            for (size_t jj = 0; jj < nj; jj++)
                c[i * ldc + j0 + jj] = beta ? c[i * ldc + j0 + jj] + acc[jj] : acc[jj];
        }
    }
}

#if FGD_BF16_X86
/* ---- AVX512-BF16 path ------------------------------------------------------------ */

#define FGD_MR 6      /* rows of C per register block */
#ifndef FGD_KC
#define FGD_KC 128    /* k pairs per cache block: a 128 x 512 B slice is 256 KB (L2) */
#endif
#ifndef FGD_NC
#define FGD_NC 512    /* columns per cache block */
#endif

/* A 6 x (16 * nv) block of C over k pairs q0 .. q0 + nq - 1: 6 * nv accumulators stay
 * in registers; each pair step loads nv B vectors and broadcasts 6 A pairs. Rows past
 * mr read row 0 again (never stored); columns past nvalid are masked. nv is a
 * constant after inlining, so the loops unroll into registers. */
FGD_TGT_BF16 static inline __attribute__((always_inline)) void
fgd_bf16_block_avx(const int nv, const uint16_t *a, size_t lda, int mr, const uint16_t *b,
                   size_t panel, size_t q0, size_t nq, float *c, size_t ldc, size_t nvalid,
                   int load_c)
{
    __m512 acc[FGD_MR][4];
    const uint32_t *ar[FGD_MR];
    for (int r = 0; r < FGD_MR; r++) {
        ar[r] = (const uint32_t *) (a + (r < mr ? r : 0) * lda) + q0;
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm512_setzero_ps();
    }
    const uint16_t *bq = b + q0 * 32;
    for (size_t q = 0; q < nq; q++, bq += 32) {
        __m512bh bv[4];
        for (int v = 0; v < nv; v++)
            bv[v] = (__m512bh) _mm512_loadu_si512((const void *) (bq + v * panel));
        for (int r = 0; r < FGD_MR; r++) {
            __m512bh av = (__m512bh) _mm512_set1_epi32((int) ar[r][q]);
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            size_t cols = nvalid - 16 * (size_t) v;   /* > 0 by construction */
            float *cp = c + r * ldc + 16 * v;
            __m512 x = acc[r][v];
            if (cols >= 16) {   /* plain moves: masked ones were much slower on Zen 4 */
                if (load_c)
                    x = _mm512_add_ps(x, _mm512_loadu_ps(cp));
                _mm512_storeu_ps(cp, x);
            } else {
                __mmask16 mask = (__mmask16) ((1u << cols) - 1);
                if (load_c)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, cp));
                _mm512_mask_storeu_ps(cp, mask, x);
            }
        }
}

FGD_TGT_BF16 static void fgd_bf16_gemm_avx512(size_t m, size_t n, size_t k, const uint16_t *pa,
                                              const uint16_t *pb, float *c, size_t ldc, int beta)
{
    const size_t kp = fgd_bf16_k_pad(k), panel = kp * 16, npairs = kp / 2;
    for (size_t jc = 0; jc < n; jc += FGD_NC) {
        size_t jc1 = jc + FGD_NC < n ? jc + FGD_NC : n;
        for (size_t q0 = 0; q0 < npairs; q0 += FGD_KC) {
            size_t nq = npairs - q0 < FGD_KC ? npairs - q0 : FGD_KC;
            int load_c = beta || q0 > 0;
            for (size_t i = 0; i < m; i += FGD_MR) {
                int mr = m - i < FGD_MR ? (int) (m - i) : FGD_MR;
                for (size_t j = jc; j < jc1; j += 64) {
                    size_t nvalid = jc1 - j < 64 ? jc1 - j : 64;
                    const uint16_t *b = pb + (j / 16) * panel;
                    const uint16_t *a = pa + i * kp;
                    float *cb = c + i * ldc + j;
                    switch ((nvalid + 15) / 16) {
                    case 4: fgd_bf16_block_avx(4, a, kp, mr, b, panel, q0, nq, cb, ldc, nvalid, load_c); break;
                    case 3: fgd_bf16_block_avx(3, a, kp, mr, b, panel, q0, nq, cb, ldc, nvalid, load_c); break;
                    case 2: fgd_bf16_block_avx(2, a, kp, mr, b, panel, q0, nq, cb, ldc, nvalid, load_c); break;
                    default: fgd_bf16_block_avx(1, a, kp, mr, b, panel, q0, nq, cb, ldc, nvalid, load_c); break;
                    }
                }
            }
        }
    }
}

/* ---- AMX path -------------------------------------------------------------------- */

/* Tile configuration (palette 1): tiles 0-3 hold a 32 x 32 block of C (2 x 2 tiles of
 * 16 rows x 16 floats), 4-5 two A tiles (16 rows x 32 bfloat16), 6-7 two B tiles
 * (16 pairs x 16 columns): every tile is 16 rows x 64 bytes. */
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; }
    fgd_tilecfg;

static inline void fgd_tilecfg_init(fgd_tilecfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg->colsb[t] = 64;
        cfg->rows[t] = 16;
    }
}

#define FGD_AMX_KC 512   /* k per cache block: a 32-row A block is 32 KB (L1) */
#define FGD_AMX_NC 256   /* columns per cache block: a 512 x 256 B slice is 256 KB (L2) */

/* The real tiles. */
#define FGD_AMX_FN fgd_bf16_gemm_amx
#define FGD_AMX_ATTR FGD_TGT_AMX
#define T_CONFIG(cfg) _tile_loadconfig(cfg)
#define T_RELEASE() _tile_release()
#define T_ZERO(t) _tile_zero(t)
#define T_LOAD(t, p, stride) _tile_loadd(t, p, stride)
#define T_STORE(t, p, stride) _tile_stored(t, p, stride)
#define T_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#include "_bf16_amx_kernel.h"
#undef FGD_AMX_FN
#undef FGD_AMX_ATTR
#undef T_CONFIG
#undef T_RELEASE
#undef T_ZERO
#undef T_LOAD
#undef T_STORE
#undef T_DP

/* Emulated tiles in plain C, for testing the AMX blocking, edges and C handling on
 * CPUs without AMX (tests only: slow). Row r of tile t is 64 bytes; each thread has
 * its own tiles, as with the real ones. */
static __thread unsigned char fgd_emu_tile[8][16][64];
static void fgd_emu_load(int t, const void *p, size_t stride)
{
    for (int r = 0; r < 16; r++)
        memcpy(fgd_emu_tile[t][r], (const char *) p + r * stride, 64);
}
static void fgd_emu_store(int t, void *p, size_t stride)
{
    for (int r = 0; r < 16; r++)
        memcpy((char *) p + r * stride, fgd_emu_tile[t][r], 64);
}
/* C[r][j] += sum over pairs q of A[r][2q] B[q][j][0] + A[r][2q+1] B[q][j][1]. */
static void fgd_emu_dp(int tc, int ta, int tb)
{
    for (int r = 0; r < 16; r++)
        for (int j = 0; j < 16; j++) {
            float acc;
            memcpy(&acc, &fgd_emu_tile[tc][r][4 * j], 4);
            for (int q = 0; q < 16; q++) {
                uint16_t a0, a1, b0, b1;
                memcpy(&a0, &fgd_emu_tile[ta][r][4 * q], 2);
                memcpy(&a1, &fgd_emu_tile[ta][r][4 * q + 2], 2);
                memcpy(&b0, &fgd_emu_tile[tb][q][4 * j], 2);
                memcpy(&b1, &fgd_emu_tile[tb][q][4 * j + 2], 2);
                acc += fgd_bf16_to_f32(a0) * fgd_bf16_to_f32(b0)
                       + fgd_bf16_to_f32(a1) * fgd_bf16_to_f32(b1);
            }
            memcpy(&fgd_emu_tile[tc][r][4 * j], &acc, 4);
        }
}
#define FGD_AMX_FN fgd_bf16_gemm_amx_emulated
#define FGD_AMX_ATTR
#define T_CONFIG(cfg) ((void) (cfg))
#define T_RELEASE() ((void) 0)
#define T_ZERO(t) memset(fgd_emu_tile[t], 0, sizeof fgd_emu_tile[t])
#define T_LOAD(t, p, stride) fgd_emu_load(t, p, stride)
#define T_STORE(t, p, stride) fgd_emu_store(t, p, stride)
#define T_DP(c, a, b) fgd_emu_dp(c, a, b)
#include "_bf16_amx_kernel.h"
#undef FGD_AMX_FN
#undef FGD_AMX_ATTR
#undef T_CONFIG
#undef T_RELEASE
#undef T_ZERO
#undef T_LOAD
#undef T_STORE
#undef T_DP
#endif /* FGD_BF16_X86 */

/* ---- entry points ---------------------------------------------------------------- */

/* C := op(A) @ op(B) (+ C if beta) from packed operands (pack_a / pack_b above). The
 * caller checks that the path is available. Row slices: pack op(B) once, and give
 * each slice its own packed rows of op(A) and its own rows of C. */
static void fgd_bf16_gemm_packed(int path, size_t m, size_t n, size_t k, const uint16_t *pa,
                                 const uint16_t *pb, float *c, size_t ldc, int beta)
{
    if (m == 0 || n == 0)
        return;
#if FGD_BF16_X86
    if (path == FGD_BF16_AMX) {
        fgd_bf16_gemm_amx(m, n, k, pa, pb, c, ldc, beta);
        return;
    }
    if (path == FGD_BF16_AMX_EMULATED) {
        fgd_bf16_gemm_amx_emulated(m, n, k, pa, pb, c, ldc, beta);
        return;
    }
    if (path == FGD_BF16_AVX512BF16) {
        fgd_bf16_gemm_avx512(m, n, k, pa, pb, c, ldc, beta);
        return;
    }
#endif
    fgd_bf16_gemm_plain(m, n, k, pa, pb, c, ldc, beta);
}

#endif /* FASTGD_BF16_GEMM_H */
