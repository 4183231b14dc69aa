# cython: language_level=3
# fastgd/_kernels_testing.pyx compiled with -mavx2 -mfma, as fastgd/_kernels_avx2.pyx
# is fastgd/_kernels.pyx (FASTGD_TEST_KERNELS=1 builds only).
include "_kernels_testing.pyx"
