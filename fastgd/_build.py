"""Which compiled build of the kernels runs: chosen once, at import.

setup.py compiles ``fastgd/_kernels.pyx`` twice on x86-64: for any x86-64 CPU
("baseline") and with AVX2 + FMA ("avx2"). ``FASTGD_KERNELS`` forces one.
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
