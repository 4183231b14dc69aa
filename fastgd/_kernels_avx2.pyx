# cython: language_level=3
# The same kernels as fastgd/_kernels.pyx, compiled a second time for x86-64 CPUs with
# AVX2 and FMA (setup.py adds -mavx2 -mfma): the element-wise loops and the
# optimizer update run 8 floats wide instead of SSE's 4. fastgd._engine imports this
# module when the CPU has both (kernel_variant() says which one runs).
include "_kernels.pyx"
