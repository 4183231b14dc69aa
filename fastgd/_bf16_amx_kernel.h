/* The AMX path's loops, included twice by _bf16_gemm.h: with the real tile
 * instructions (fgd_bf16_gemm_amx) and with tiles emulated in C
 * (fgd_bf16_gemm_amx_emulated, so that the blocking and edge handling are tested on
 * CPUs without AMX). Expects FGD_AMX_FN, FGD_AMX_ATTR and the T_* macros.
 *
 * Each step of the inner loop does 32 k (16 pairs) for a 32 x 32 block of C held in
 * tiles 0-3: two A tiles (rows i..i+15, i+16..i+31, straight from the packed rows)
 * and two B tiles (two 16-column panels, contiguous 1 KB each), four tdpbf16ps.
 * Blocks of C that cross the edge of C go through a 32 x 32 buffer; packed A and B
 * are padded so that every tile load stays inside them. */
FGD_AMX_ATTR static void FGD_AMX_FN(size_t m, size_t n, size_t k, const uint16_t *pa,
                                    const uint16_t *pb, float *c, size_t ldc, int beta)
{
    const size_t kp = fgd_bf16_k_pad(k), panel = kp * 16;
    const size_t a_stride = kp * sizeof(uint16_t);
    float tmp[32 * 32];
    fgd_tilecfg cfg;
    fgd_tilecfg_init(&cfg);
    T_CONFIG(&cfg);
    for (size_t jc = 0; jc < n; jc += FGD_AMX_NC) {
        size_t jc1 = jc + FGD_AMX_NC < n ? jc + FGD_AMX_NC : n;
        for (size_t p0 = 0; p0 < kp; p0 += FGD_AMX_KC) {
            size_t p1 = p0 + FGD_AMX_KC < kp ? p0 + FGD_AMX_KC : kp;
            int load_c = beta || p0 > 0;
            for (size_t i = 0; i < m; i += 32) {
                size_t rows = m - i < 32 ? m - i : 32;
                for (size_t j = jc; j < jc1; j += 32) {
                    size_t cols = n - j < 32 ? n - j : 32;
                    int full = rows == 32 && cols == 32;
                    float *cb = full ? c + i * ldc + j : tmp;
                    size_t ld = full ? ldc : 32;
                    if (load_c) {
                        if (!full) {
                            memset(tmp, 0, sizeof tmp);
                            for (size_t r = 0; r < rows; r++)
                                memcpy(tmp + r * 32, c + (i + r) * ldc + j, cols * sizeof(float));
                        }
                        T_LOAD(0, cb, ld * 4);
                        T_LOAD(1, cb + 16, ld * 4);
                        T_LOAD(2, cb + 16 * ld, ld * 4);
                        T_LOAD(3, cb + 16 * ld + 16, ld * 4);
                    } else {
                        T_ZERO(0);
                        T_ZERO(1);
                        T_ZERO(2);
                        T_ZERO(3);
                    }
                    const uint16_t *a0 = pa + i * kp, *a1 = pa + (i + 16) * kp;
                    const uint16_t *b0 = pb + (j / 16) * panel, *b1 = b0 + panel;
                    for (size_t p = p0; p < p1; p += 32) {
                        T_LOAD(4, a0 + p, a_stride);
                        T_LOAD(5, a1 + p, a_stride);
                        T_LOAD(6, b0 + p * 16, 64);   /* pair p / 2, 32 elements each */
                        T_LOAD(7, b1 + p * 16, 64);
                        T_DP(0, 4, 6);
                        T_DP(1, 4, 7);
                        T_DP(2, 5, 6);
                        T_DP(3, 5, 7);
                    }
                    T_STORE(0, cb, ld * 4);
                    T_STORE(1, cb + 16, ld * 4);
                    T_STORE(2, cb + 16 * ld, ld * 4);
                    T_STORE(3, cb + 16 * ld + 16, ld * 4);
                    if (!full)
                        for (size_t r = 0; r < rows; r++)
                            memcpy(c + (i + r) * ldc + j, tmp + r * 32, cols * sizeof(float));
                }
            }
        }
    }
    T_RELEASE();
}
