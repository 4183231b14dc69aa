/* Branch-free exp and tanh for fastgd's element-wise loops, and vectorised sums.
 *
 * libm's expf/tanhf are scalar calls (glibc's vector variants need -ffast-math),
 * ~15 ns per tanhf here: a (100, 100) tanh network spent 70% of its epoch in them.
 * These versions are straight-line code (selects, no branches, no calls), so the
 * compiler vectorises the loops that call them at whatever width the build targets.
 *
 * exp: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite: ln2 split in a high part with
 * trailing zero bits, so n * LN2_HI is exact), exp(r) by its Taylor polynomial
 * (degree 7 for float: truncation 5e-9 relative; degree 13 for double: 4e-18),
 * times 2^n built in the exponent bits (as 2^h 2^(n-h), h = floor(n/2): 2^n alone
 * would not fit the exponent field at both ends). Round-to-nearest n comes from adding
 * 1.5 * 2^mantissa_bits (no rint call, valid while |n| < 2^22), which also leaves
 * n in the low bits of the sum. Results below the smallest normal number are
 * flushed to 0 (libm returns subnormals there); overflow gives inf; NaN stays NaN.
 *
 * tanh: |x| < 0.55 by x + x^3 P(x^2) (P fitted by tools/fit_tanh_polynomial.py,
 * < 1 ulp), else sign(x) (1 - 2 / (exp(2|x|) + 1)): there tanh >= 0.5, so the
 * cancellation in 1 - ... costs at most one bit. Both are computed, one selected.
 *
 * tests/test_kernels.py checks every function against numpy in ulps over the
 * whole range, including the branch points, +-inf and NaN.
 *
 * Must be compiled without -ffast-math (the rounding trick and the NaN selects
 * depend on IEEE semantics).
 */
#ifndef FASTGD_VMATH_H
#define FASTGD_VMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline float fgd_expf(float x)
{
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f;      /* 12 significant bits */
    const float ln2_lo = 1.42860682030941723e-6f;
    const float round_magic = 12582912.0f;        /* 1.5 * 2^23 */
    /* Below -87.34 the result is subnormal (flushed to 0); above 88.72 it overflows.
     * Clamping keeps n in [-126, 128]; the selects at the end fix both ends. */
    float xc = x < -87.5f ? -87.5f : x;
    xc = xc > 88.8f ? 88.8f : xc;
    float shifted = xc * log2e + round_magic;
    float n = shifted - round_magic;
    float r = xc - n * ln2_hi;
    r = r - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    int32_t n_int = bits - 0x4B400000;  /* the low bits of `shifted` hold n */
    int32_t half = n_int >> 1;
    int32_t low_bits = (half + 127) << 23, high_bits = (n_int - half + 127) << 23;
    float low, high;
    memcpy(&low, &low_bits, sizeof low);
    memcpy(&high, &high_bits, sizeof high);
    float result = p * low * high;
    result = x < -87.3365447f ? 0.0f : result;
    result = x > 88.7228394f ? __builtin_inff() : result;
    return x != x ? x : result;
}

static inline double fgd_exp(double x)
{
    const double log2e = 1.4426950408889634074;
    const double ln2_hi = 0.693147180369123816490;  /* 32 significant bits */
    const double ln2_lo = 1.90821492927058770002e-10;
    const double round_magic = 6755399441055744.0;  /* 1.5 * 2^52 */
    double xc = x < -708.5 ? -708.5 : x;
    xc = xc > 709.9 ? 709.9 : xc;
    double shifted = xc * log2e + round_magic;
    double n = shifted - round_magic;
    double r = xc - n * ln2_hi;
    r = r - n * ln2_lo;
    double p = 1.0 / 6227020800.0;                  /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    int64_t n_int = bits - INT64_C(0x4338000000000000);
    int64_t half = n_int >> 1;
    int64_t low_bits = (half + 1023) << 52, high_bits = (n_int - half + 1023) << 52;
    double low, high;
    memcpy(&low, &low_bits, sizeof low);
    memcpy(&high, &high_bits, sizeof high);
    double result = p * low * high;
    result = x < -708.396418532264 ? 0.0 : result;
    result = x > 709.782712893384 ? __builtin_inf() : result;
    return x != x ? x : result;
}

static inline float fgd_tanhf(float x)
{
    float ax = x < 0.0f ? -x : x;
    float u = x * x;
    float p = -0.006424536656811069f;
    p = p * u + 0.02118259672024241f;
    p = p * u - 0.05388053923658857f;
    p = p * u + 0.13332869505536474f;
    p = p * u - 0.333333264161865f;
    float small = x + x * u * p;
    /* exp(2|x|) overflows to inf for |x| > 44: 2 / inf = 0 gives exactly 1. */
    float large = 1.0f - 2.0f / (fgd_expf(2.0f * ax) + 1.0f);
    large = x < 0.0f ? -large : large;
    return ax < 0.55f ? small : large;  /* NaN: the comparison fails, large is NaN */
}

static inline double fgd_tanh(double x)
{
    double ax = x < 0.0 ? -x : x;
    double u = x * x;
    double p = -2.0034340805583944e-05;
    p = p * u + 8.420985091622719e-05;
    p = p * u - 0.00023401956402928768;
    p = p * u + 0.0005887015779299535;
    p = p * u - 0.0014556070415061898;
    p = p * u + 0.003592102296391457;
    p = p * u - 0.008863233650776629;
    p = p * u + 0.021869488452191315;
    p = p * u - 0.05396825396617025;
    p = p * u + 0.13333333333330957;
    p = p * u - 0.33333333333333326;
    double small = x + x * u * p;
    double large = 1.0 - 2.0 / (fgd_exp(2.0 * ax) + 1.0);
    large = x < 0.0 ? -large : large;
    return ax < 0.55 ? small : large;
}

/* sum w^2 (returned) and sum |w| (into *sum_abs) in double. "omp simd reduction"
 * (-fopenmp-simd) lets the compiler keep one partial sum per vector lane: as plain C
 * the sum is one chain of dependent additions, which cost as much as the whole adam
 * update at batch 32. The rounding then depends on the vector width (the build),
 * never on the data or thread count; without the flag the loop is scalar and exact
 * all the same. */
#define FGD_SQUARE_AND_ABS_SUMS(name, type)                                  \
    static inline double name(const type *w, ptrdiff_t n, double *sum_abs)  \
    {                                                                        \
        double squares = 0.0, absolutes = 0.0;                               \
        _Pragma("omp simd reduction(+:squares, absolutes)")                  \
        for (ptrdiff_t k = 0; k < n; k++) {                                  \
            double x = w[k];                                                 \
            squares += x * x;                                                \
            absolutes += x < 0 ? -x : x;                                     \
        }                                                                    \
        *sum_abs = absolutes;                                                \
        return squares;                                                      \
    }
FGD_SQUARE_AND_ABS_SUMS(fgd_square_and_abs_sums_f, float)
FGD_SQUARE_AND_ABS_SUMS(fgd_square_and_abs_sums_d, double)

#endif
