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

/* sum w^2 (returned) and sum |w| (into *sum_abs): the penalty term of every batch's
 * loss. As plain C each sum is one chain of dependent additions (4 cycles each: ~4 us
 * for 11k weights, as much as the adam update at batch 32), and "omp simd reduction"
 * still leaves one chain per vector. Here 32 partial sums (four vectors of eight
 * floats, or of four doubles for double weights; GCC vector extensions, the build's
 * own width) break the chain, and they are added up in double at the end. float
 * weights are summed in float like scikit-learn's float32 np.dot of the weights:
 * each partial sum has n / 32 terms, a relative error of ~1e-7 (at most n / 32 ulp),
 * which moves the loss (the penalty is ~1e-3 of it) by ~1e-10. The rounding depends
 * only on n, not on the build, the data or the thread count. */
typedef float fgd_v8f __attribute__((vector_size(32)));
typedef int32_t fgd_v8i __attribute__((vector_size(32)));
typedef double fgd_v4d __attribute__((vector_size(32)));
typedef int64_t fgd_v4i __attribute__((vector_size(32)));

#define FGD_SQUARE_AND_ABS_SUMS(name, type, vtype, itype, lanes, magnitude)  \
    static inline double name(const type *w, ptrdiff_t n, double *sum_abs)  \
    {                                                                        \
        const itype magnitude_bits = magnitude;                              \
        vtype sq[4] = {{0}}, ab[4] = {{0}};                                  \
        ptrdiff_t k = 0;                                                     \
        for (; k + 4 * (lanes) <= n; k += 4 * (lanes)) {                     \
            for (int j = 0; j < 4; j++) {                                    \
                vtype x;                                                     \
                memcpy(&x, w + k + (lanes) * j, sizeof x);                   \
                sq[j] += x * x;                                              \
                ab[j] += (vtype) ((itype) x & magnitude_bits);               \
            }                                                                \
        }                                                                    \
        vtype sq_all = (sq[0] + sq[1]) + (sq[2] + sq[3]);                   \
        vtype ab_all = (ab[0] + ab[1]) + (ab[2] + ab[3]);                   \
        double squares = 0.0, absolutes = 0.0;                               \
        for (int j = 0; j < (lanes); j++) {                                  \
            squares += sq_all[j];                                            \
            absolutes += ab_all[j];                                          \
        }                                                                    \
        for (; k < n; k++) {                                                 \
            double x = w[k];                                                 \
            squares += x * x;                                                \
            absolutes += __builtin_fabs(x);                                  \
        }                                                                    \
        *sum_abs = absolutes;                                                \
        return squares;                                                      \
    }
#define FGD_F32_MAGNITUDE {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, \
                           INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}
#define FGD_F64_MAGNITUDE {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX}
FGD_SQUARE_AND_ABS_SUMS(fgd_square_and_abs_sums_f, float, fgd_v8f, fgd_v8i, 8,
                        FGD_F32_MAGNITUDE)
FGD_SQUARE_AND_ABS_SUMS(fgd_square_and_abs_sums_d, double, fgd_v4d, fgd_v4i, 4,
                        FGD_F64_MAGNITUDE)


/* Whether x[0..n) holds only finite numbers: x - x is 0 for finite x and NaN for
 * inf and NaN, and a sum of such terms stays 0 or NaN whatever the order. Four vector
 * accumulators, no branches, so the scan runs at memory speed (numpy's np.sum, which
 * scikit-learn's check uses, is single-threaded: ~17 GB/s here). Needs IEEE
 * semantics: -ffast-math would fold x - x to 0. */
#define FGD_ALL_FINITE(name, type, vtype, lanes)                             \
    static inline int name(const type *x, ptrdiff_t n)                       \
    {                                                                        \
        vtype acc[4] = {{0}};                                                \
        ptrdiff_t k = 0;                                                     \
        for (; k + 4 * (lanes) <= n; k += 4 * (lanes)) {                     \
            for (int j = 0; j < 4; j++) {                                    \
                vtype v;                                                     \
                memcpy(&v, x + k + (lanes) * j, sizeof v);                   \
                acc[j] += v - v;                                             \
            }                                                                \
        }                                                                    \
        vtype all = (acc[0] + acc[1]) + (acc[2] + acc[3]);                  \
        type total = 0;                                                      \
        for (int j = 0; j < (lanes); j++)                                    \
            total += all[j];                                                 \
        for (; k < n; k++)                                                   \
            total += x[k] - x[k];                                            \
        return total == 0;                                                   \
    }
FGD_ALL_FINITE(fgd_all_finite_f, float, fgd_v8f, 8)
FGD_ALL_FINITE(fgd_all_finite_d, double, fgd_v4d, 4)

/* Adam's step over n float32 parameters (scikit-learn's update):
 *
 *   g = (raw + alpha w) / weight_sum;  m := b1 m + (1 - b1) g;
 *   s := b2 s + (1 - b2) g^2;          w += -rate m / (sqrt(s) + eps)
 *
 * Written out, every element costs a divide, a square root and a second divide, all
 * on the one divider port: ~16 cycles per 8 floats, a quarter of a batch-32 epoch.
 * Here 1 / weight_sum is taken once, and 1 / (sqrt(s) + eps) comes from the
 * hardware's 12-bit estimates (rsqrtps, rcpps) refined by one Newton step each:
 * relative error ~5e-7 in the step (a few ulp of the step, far below one ulp of w
 * unless w is ~1e-3 x the step). s is clamped to FLT_MIN before rsqrt (which treats
 * subnormals as 0, and 0 * rsqrt(0) is NaN): sqrt(s) is then off only where it is
 * < 1.1e-19, negligible beside any eps a user can choose. An infinite s gives NaN
 * (the exact formula gives 0 or NaN), which the estimators report as divergence.
 * Without SSE (non-x86) the loop is the exact formula. */
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* The vector loop, arithmetic in GCC vector extensions (a vector op scalar broadcasts
 * the scalar; the AVX2 + FMA build fuses the multiply-adds), the estimates and max as
 * the build's intrinsics. */
#define FGD_ADAM_VECTOR_LOOP(vtype, lanes, rsqrt, rcp, vmax)                  \
    const vtype smallest_normal = (vtype) {0} + 1.17549435e-38f;              \
    for (; k + (lanes) <= n; k += (lanes)) {                                  \
        vtype wk, rk, mk, sk;                                                 \
        memcpy(&wk, w + k, sizeof wk);                                        \
        memcpy(&rk, raw + k, sizeof rk);                                      \
        memcpy(&mk, m + k, sizeof mk);                                        \
        memcpy(&sk, s + k, sizeof sk);                                        \
        vtype g = (rk + alpha * wk) * inv_ws;                                 \
        mk = beta_1 * mk + one_minus_b1 * g;                                  \
        sk = beta_2 * sk + one_minus_b2 * (g * g);                            \
        memcpy(m + k, &mk, sizeof mk);                                        \
        memcpy(s + k, &sk, sizeof sk);                                        \
        vtype clamped = vmax(sk, smallest_normal);                            \
        vtype y = rsqrt(clamped);                 /* y ~ 1 / sqrt(s) */       \
        y = y * (1.5f - (0.5f * clamped * y) * y);                            \
        vtype d = sk * y + epsilon;               /* sqrt(s) + eps */         \
        vtype r = rcp(d);                                                     \
        r = r * (2.0f - d * r);                   /* r ~ 1 / d */             \
        wk = wk + (-rate * mk) * r;                                           \
        memcpy(w + k, &wk, sizeof wk);                                        \
    }

static inline void fgd_adam_f(float *w, const float *raw, float *m, float *s,
                              ptrdiff_t n, float alpha, float weight_sum,
                              float beta_1, float one_minus_b1, float beta_2,
                              float one_minus_b2, float epsilon, float rate)
{
    const float inv_ws = 1.0f / weight_sum;
    ptrdiff_t k = 0;
#if defined(__AVX2__) && defined(__FMA__)
    FGD_ADAM_VECTOR_LOOP(__m256, 8, _mm256_rsqrt_ps, _mm256_rcp_ps, _mm256_max_ps)
#elif defined(__SSE2__)
    FGD_ADAM_VECTOR_LOOP(__m128, 4, _mm_rsqrt_ps, _mm_rcp_ps, _mm_max_ps)
#endif
    for (; k < n; k++) {  /* the tail (and non-x86): the exact formula */
        float g = (raw[k] + alpha * w[k]) * inv_ws;
        m[k] = beta_1 * m[k] + one_minus_b1 * g;
        s[k] = beta_2 * s[k] + one_minus_b2 * (g * g);
        w[k] = w[k] + (-rate * m[k]) / (__builtin_sqrtf(s[k]) + epsilon);
    }
}

/* The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, for the exact GELU
 * x Phi(x) (torch's default) and its derivative Phi(x) + x phi(x). glibc's erf is a
 * scalar call with branches; this is straight-line code. For z = |x| / sqrt 2 and
 * t = 2 / (2 + z) in (0, 1], erfc(z) = t exp(-z^2 + P(t)), P a degree-24 polynomial
 * in x = (2 t - lo - hi) / (hi - lo) fitted by tools/fit_erfc_polynomial.py against
 * mpmath: relative error of erfc(z) <= 3.3e-15 for z <= 3.5 and 2.6e-13 beyond (the
 * rounding of z^2 in the exponent). Phi(x) = erfc(z) / 2 for x < 0 and 1 - erfc(z) / 2
 * otherwise, so Phi is accurate relative to itself on both sides (no 1 + erf(x)
 * cancellation for negative x). float32 goes through double (it is not the default
 * path; the double code vectorises at half the width). */
static inline double fgd_half_erfc_scaled(double z, double *gauss)
{
    double t = 2.0 / (2.0 + z);
    double x = t * 2.1481481481481484 - 1.1481481481481481;
    double p = -7.863852835165605e-09;
    p = p * x + -6.721241739457783e-10;
    p = p * x + 5.508057605485653e-08;
    p = p * x + -1.8853083079179045e-08;
    p = p * x + -1.70232250156117e-07;
    p = p * x + 2.1913768536284645e-07;
    p = p * x + 1.5649361196305678e-07;
    p = p * x + -1.057032885260176e-06;
    p = p * x + 1.339221895152228e-06;
    p = p * x + 2.5306408765283804e-06;
    p = p * x + -9.449511064896698e-06;
    p = p * x + 1.6194374685641185e-06;
    p = p * x + 3.6938671884962215e-05;
    p = p * x + -4.875084724908512e-05;
    p = p * x + -9.848281149521802e-05;
    p = p * x + 0.0002990983786257848;
    p = p * x + 0.00013733665733052508;
    p = p * x + -0.0014044552268819076;
    p = p * x + 0.00040707177780548246;
    p = p * x + 0.006518319915260026;
    p = p * x + -0.005057692512964364;
    p = p * x + -0.039698260232004304;
    p = p * x + 0.03240928768119353;
    p = p * x + 0.6316996845897556;
    p = p * x + -0.6251953118881127;
    double e = fgd_exp(-z * z);
    *gauss = e;
    return 0.5 * t * e * fgd_exp(p);
}

static inline double fgd_normal_cdf(double x, double *density)
{
    double z = (x < 0.0 ? -x : x) * 0.70710678118654752440;
    double e;
    double q = fgd_half_erfc_scaled(z, &e);
    *density = e * 0.39894228040143267794;      /* exp(-x^2 / 2) / sqrt(2 pi) */
    return x < 0.0 ? q : 1.0 - q;
}

static inline double fgd_gelu(double x)
{
    double density;
    return x * fgd_normal_cdf(x, &density);
}

static inline double fgd_gelu_derivative(double x)
{
    double density;
    double cdf = fgd_normal_cdf(x, &density);
    return cdf + x * density;
}

static inline float fgd_geluf(float x) { return (float) fgd_gelu((double) x); }

static inline float fgd_gelu_derivativef(float x)
{
    return (float) fgd_gelu_derivative((double) x);
}

/* SiLU x sigmoid(x) and its derivative s (1 + x (1 - s)), in the working precision. */
static inline double fgd_silu(double x) { return x / (1.0 + fgd_exp(-x)); }
static inline float fgd_siluf(float x) { return x / (1.0f + fgd_expf(-x)); }

static inline double fgd_silu_derivative(double x)
{
    double s = 1.0 / (1.0 + fgd_exp(-x));
    return s * (1.0 + x * (1.0 - s));
}

static inline float fgd_silu_derivativef(float x)
{
    float s = 1.0f / (1.0f + fgd_expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

/* Inverted dropout's keep mask, counter-based: unit j of hidden layer l in row r (the
 * row's position in the epoch's order, so the mask does not depend on how batches are
 * split between threads) is kept when the top 53 bits of a splitmix64-style mix of
 * (seed, r, l, j) are >= threshold = rate * 2^53. The backward pass recomputes the
 * same mask instead of storing it. row[j] *= keep ? scale : 0, scale = 1 / (1 - rate). */
static inline uint64_t fgd_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#define FGD_DROPOUT_ROW(name, type)                                              \
    static inline void name(type *row, ptrdiff_t n, uint64_t seed, uint64_t r,   \
                            uint64_t layer, uint64_t threshold, type scale)      \
    {                                                                            \
        uint64_t base = fgd_mix64(seed ^ (r * UINT64_C(0x9E3779B97F4A7C15)))     \
                        + (layer << 32);                                         \
        for (ptrdiff_t j = 0; j < n; j++) {                                      \
            uint64_t h = fgd_mix64((base + (uint64_t) j)                        \
                                   * UINT64_C(0xD1B54A32D192ED03));              \
            row[j] = (h >> 11) >= threshold ? row[j] * scale : (type) 0;        \
        }                                                                        \
    }
FGD_DROPOUT_ROW(fgd_dropout_row_f, float)
FGD_DROPOUT_ROW(fgd_dropout_row_d, double)

#endif
