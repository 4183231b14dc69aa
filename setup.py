"""Build the Cython kernels.

Environment variables (read at build time):

FASTGD_DEBUG=1
    Cython bounds, wraparound and initialisation checks on, -O0 -g: for running the
    test suite against kernels that fail loudly on an out-of-bounds access.
FASTGD_NATIVE=1
    Add -march=native (local builds only: the result will not run on older CPUs).
FASTGD_NO_OPENMP=1
    Build without OpenMP even where the compiler supports it.
FASTGD_TEST_KERNELS=1
    Also build fastgd._kernels_testing (and its AVX2 twin): the kernels plus the
    test-only entry points the test suite calls (./build_inplace.sh and .ci/run set
    it; wheels for users are built without).
"""
import os
import platform
import sys
import tempfile
import subprocess

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTGD_DEBUG", "0") not in ("", "0")
NATIVE = os.environ.get("FASTGD_NATIVE", "0") not in ("", "0")
NO_OPENMP = os.environ.get("FASTGD_NO_OPENMP", "0") not in ("", "0")
TEST_KERNELS = os.environ.get("FASTGD_TEST_KERNELS", "0") not in ("", "0")


def compiler_accepts(flags, program):
    """Try to compile and link a tiny C program with the default C compiler."""
    if sys.platform == "win32":
        return False
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(program)
        cmd = [cc, *flags, src, "-o", os.path.join(tmp, "probe")]
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


OPENMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
AVX2_PROBE = ("#include <immintrin.h>\nint main(void){__m256 a = _mm256_set1_ps(1.f);\n"
              "a = _mm256_fmadd_ps(a, a, a); return (int) _mm256_cvtss_f32(a) != 2;}\n")
AVX2_FLAGS = ["-mavx2", "-mfma"]
BF16_PROBE = ("#include <immintrin.h>\nint main(void){_tile_zero(0);\n"
              "__m512 a = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh) _mm512_set1_epi32(1),\n"
              "(__m512bh) _mm512_set1_epi32(1)); return (int) _mm512_reduce_add_ps(a);}\n")
BF16_FLAGS = ["-mamx-tile", "-mamx-bf16", "-mavx512f", "-mavx512bf16"]


# -fno-math-errno: sqrt need not set errno, so the update loops vectorise.
# -fno-trapping-math: nothing reads the floating-point exception flags, and without
# it GCC keeps the selects in fastgd/_vmath.h as branches (no vectorisation).
# Never -ffast-math: _vmath.h and the NaN checks rely on IEEE semantics.
# -fopenmp-simd: the "omp simd" loops of _vmath.h (no OpenMP runtime needed).
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno", "-fno-trapping-math"]
if compiler_accepts(["-fopenmp-simd"], "int main(void){return 0;}\n"):
    compile_args.append("-fopenmp-simd")
link_args = []
if NATIVE:
    compile_args.append("-march=native")
USE_OPENMP = not NO_OPENMP and compiler_accepts(["-fopenmp"], OPENMP_PROBE)
# A second build of the same kernels for x86-64 CPUs with AVX2 + FMA, chosen at import
# time by fastgd._engine (the baseline build targets any x86-64: SSE2 only).
BUILD_AVX2 = (not NATIVE and platform.machine().lower() in ("x86_64", "amd64")
              and compiler_accepts(AVX2_FLAGS, AVX2_PROBE))
# The bfloat16 products (fastgd/_bf16.pyx): only where the compiler knows the AMX and
# AVX512-BF16 intrinsics. The module is compiled for baseline x86-64; its kernels carry
# those flags as target attributes (fastgd/_bf16_gemm.h), so that importing it, and
# its plain path, never executes an instruction the CPU lacks.
BUILD_BF16 = (platform.machine().lower() in ("x86_64", "amd64")
              and compiler_accepts(BF16_FLAGS, BF16_PROBE))
if USE_OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}



def kernels_extension(name, extra_flags=()):
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if not BUILD_BF16:   # _kernels.pyx includes _bf16_gemm.h: its plain path only
        macros.append(("FGD_BF16_NO_KERNELS", "1"))
    return Extension(
        f"fastgd.{name}",
        [f"fastgd/{name}.pyx"],
        include_dirs=[np.get_include(), "fastgd"],
        define_macros=macros,
        extra_compile_args=[*compile_args, *extra_flags],
        extra_link_args=link_args,
    )


extensions = [kernels_extension("_kernels")]
if BUILD_AVX2:
    extensions.append(kernels_extension("_kernels_avx2", AVX2_FLAGS))
if TEST_KERNELS:
    extensions.append(kernels_extension("_kernels_testing"))
    if BUILD_AVX2:
        extensions.append(kernels_extension("_kernels_avx2_testing", AVX2_FLAGS))
if BUILD_BF16:
    extensions.append(kernels_extension("_bf16"))

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
    )
)
