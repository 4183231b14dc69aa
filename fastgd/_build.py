"""Which compiled build of the kernels runs, and which bfloat16 product unit:
chosen once, at import.

setup.py compiles ``fastgd/_kernels.pyx`` twice on x86-64: for any x86-64 CPU
("baseline") and with AVX2 + FMA ("avx2"). ``FASTGD_KERNELS`` forces one.
``matmul_precision="bfloat16"`` runs on AMX or AVX512-BF16 (``matmul_path``);
``FASTGD_BF16_PATH`` forces one.
"""

import os

from fastgd import _kernels as _baseline_kernels


def available_kernel_builds():
    """The compiled kernel builds this CPU can run, by name ("baseline", "avx2").

    setup.py compiles the kernels twice on x86-64: for any x86-64 CPU, and with AVX2 +
    FMA (element-wise loops and optimizer updates twice as wide, fused multiply-adds).

    Returns
    -------
    builds : dict of str to module
        The compiled kernel modules by name; "baseline" is always there.

    Examples
    --------
    >>> from fastgd._build import available_kernel_builds
    >>> "baseline" in available_kernel_builds()
    True
    """
    builds = {"baseline": _baseline_kernels}
    if _baseline_kernels.cpu_has_avx2_fma():
        try:
            from fastgd import _kernels_avx2
        except ImportError:  # not built (another architecture or compiler)
            pass
        else:
            builds["avx2"] = _kernels_avx2
    return builds


def _choose_kernels():
    """The fastest build this CPU runs, or the one FASTGD_KERNELS names."""
    builds = available_kernel_builds()
    wanted = os.environ.get("FASTGD_KERNELS", "")
    if not wanted:
        return builds.get("avx2", builds["baseline"])
    if wanted not in builds:
        raise ImportError(f"FASTGD_KERNELS={wanted!r}: this installation and CPU offer "
                          f"{sorted(builds)}")
    return builds[wanted]


kernels = _choose_kernels()


def kernel_build():
    """Name of the kernel build in use: "avx2" or "baseline".

    fastgd imports the AVX2 + FMA build when the CPU has both, unless the
    environment variable ``FASTGD_KERNELS`` names another one. The builds agree to
    rounding, not bit for bit (fused multiply-adds).

    Returns
    -------
    name : str
        "avx2" or "baseline".

    Examples
    --------
    >>> from fastgd._build import available_kernel_builds, kernel_build
    >>> kernel_build() in available_kernel_builds()
    True
    """
    return "avx2" if kernels.built_for_avx2() else "baseline"


def _choose_matmul_path():
    """The best bfloat16 product unit of this CPU, or the one FASTGD_BF16_PATH names
    ("float32": none, the fallback; or a test path, see kernels.BF16_TEST_CODES)."""
    units = list(kernels.BF16_PATH_CODES)
    wanted = os.environ.get("FASTGD_BF16_PATH", "")
    if not wanted:
        return units[0] if units else "float32"
    offered = [*units, "float32", *kernels.BF16_TEST_CODES]
    if wanted not in offered:
        raise ImportError(f"FASTGD_BF16_PATH={wanted!r}: this CPU (and OS) offers "
                          f"{offered}")
    return wanted


_matmul_path = _choose_matmul_path()


def matmul_path():
    """How ``matmul_precision="bfloat16"`` computes the training products here.

    Chosen once, at import, as the best this CPU offers, unless the environment
    variable ``FASTGD_BF16_PATH`` names another one:

    - "amx": AMX tiles (``tdpbf16ps``; Intel Xeon since Sapphire Rapids);
    - "avx512bf16": ``vdpbf16ps`` (AVX512-BF16, e.g. AMD Zen 4);
    - "float32": neither unit: the products stay float32 on unrounded inputs (the
      fit warns once per process).

    For tests, ``FASTGD_BF16_PATH`` may also name "plain" or "amx_emulated": the
    same bfloat16 arithmetic in plain C on any x86-64 CPU (slow). Naming a unit
    this CPU lacks fails the import with an ImportError.

    ``matmul_precision="highest"`` (the default) always computes in float32 or
    float64, whatever this says.

    Returns
    -------
    name : str
        "amx", "avx512bf16" or "float32".

    Examples
    --------
    >>> from fastgd._build import matmul_path
    >>> matmul_path() in ("amx", "avx512bf16", "float32")
    True
    """
    return _matmul_path


def matmul_path_code():
    """Model.matmul_path for matmul_precision="bfloat16": the kernels' code of
    matmul_path(), or None for the float32 fallback."""
    return {**kernels.BF16_PATH_CODES, **kernels.BF16_TEST_CODES}.get(_matmul_path)
