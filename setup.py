"""Build the Cython kernels.

Environment variables (read at build time):

FASTGD_DEBUG=1
    Cython bounds, wraparound and initialisation checks on, -O0 -g: for running the
    test suite against kernels that fail loudly on an out-of-bounds access.
FASTGD_NATIVE=1
    Add -march=native (local builds only: the result will not run on older CPUs).
FASTGD_NO_OPENMP=1
    Build without OpenMP even where the compiler supports it.
"""
import os
import sys
import tempfile
import subprocess

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTGD_DEBUG", "0") not in ("", "0")
NATIVE = os.environ.get("FASTGD_NATIVE", "0") not in ("", "0")
NO_OPENMP = os.environ.get("FASTGD_NO_OPENMP", "0") not in ("", "0")


def compiler_accepts_openmp():
    """Try to compile and link a tiny OpenMP program with the default C compiler."""
    if sys.platform == "win32":
        return False
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = [cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")]
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


# -fno-math-errno: sqrt/exp need not set errno, so the update loops vectorise.
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]
link_args = []
if NATIVE:
    compile_args.append("-march=native")
USE_OPENMP = not NO_OPENMP and compiler_accepts_openmp()
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

extensions = [
    Extension(
        "fastgd._kernels",
        ["fastgd/_kernels.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
    )
)
