"""Check the contents of fastgd's sdist and wheel: the sdist holds every source the
build needs (setup.py, pyproject.toml, the .pyx and .h files) and no generated C or
compiled objects; the wheel holds the Python modules and the compiled kernels and no
sources, generated C or build leftovers.

    python tools/check_dist.py dist/fastgd-X.tar.gz dist/fastgd-X-*.whl
"""

import fnmatch
import sys
import tarfile
import zipfile
from pathlib import Path

SOURCES = ["fastgd/_kernels.pyx", "fastgd/_kernels_avx2.pyx", "fastgd/_vmath.h",
           "fastgd/_kernels_testing.pyx", "fastgd/_kernels_avx2_testing.pyx",
           "fastgd/_small_gemm.h", "setup.py", "pyproject.toml", "README.md",
           "MANIFEST.in", "fastgd/__init__.py", "fastgd/__main__.py"]
NEVER_IN_SDIST = ["*.c", "*.so", "*.o", "*.pyd", "*.html", "*/__pycache__/*", "*.pyc",
                  "*/build/*", "*/.venv*", "*.egg-info/SOURCES.txt.bak"]
NEVER_IN_WHEEL = ["*.c", "*.o", "*.pyx", "*.h", "*.html", "*__pycache__*", "*.pyc",
                  "build/*", "tests/*", "benchmarks/*", "docs/*", "examples/*", "tools/*",
                  "fastgd/_kernels*_testing*"]


def problems(names, required, forbidden, what):
    found = []
    for path in required:
        if path not in names:
            found.append(f"{what} lacks {path}")
    for name in names:
        for pattern in forbidden:
            if fnmatch.fnmatch(name, pattern):
                found.append(f"{what} holds {name} (matches {pattern})")
    return found


def main(sdist, wheel):
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        sdist_names = [n[len(top) + 1:] for n in tar.getnames() if "/" in n]
    with zipfile.ZipFile(wheel) as whl:
        wheel_names = whl.namelist()
    py = [f"fastgd/{p.name}" for p in Path(__file__).parent.parent.glob("fastgd/*.py")]
    found = problems(sdist_names, SOURCES, NEVER_IN_SDIST, "sdist")
    found += problems(wheel_names, py, NEVER_IN_WHEEL, "wheel")
    kernels = [n for n in wheel_names if fnmatch.fnmatch(n, "fastgd/_kernels*.so")
               or fnmatch.fnmatch(n, "fastgd/_kernels*.pyd")]
    if not kernels:
        found.append("wheel holds no compiled kernels (fastgd/_kernels*.so)")
    for line in found:
        print(line, file=sys.stderr)
    if found:
        return 1
    print(f"sdist: {len(sdist_names)} files, sources complete, no generated C")
    print(f"wheel: {len(wheel_names)} files: {', '.join(sorted(kernels))} and the "
          f"Python modules, no sources or build leftovers")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
