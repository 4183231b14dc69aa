#!/usr/bin/env bash
# Build the sdist and the wheel with `python -m build` (the wheel is built from the
# unpacked sdist, so this also proves that the sdist builds from scratch), check what
# each archive holds, install the wheel into a fresh venv and run tools/smoke.py there
# from outside the source tree.
#
#   tools/wheel_smoke.sh [OUTDIR]     (default: a temporary directory, removed after)
#
# Needs `build` (pip install build) in the calling Python; the fresh venv gets
# fastgd's runtime dependencies from the package index.
set -euo pipefail
# A wheel is a production build: never the test-only kernels (.ci/run exports the
# switch for its own builds; tools/check_dist.py would reject them in the wheel).
unset FASTGD_TEST_KERNELS
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
if [ $# -ge 1 ]; then
    out="$1"; mkdir -p "$out"
else
    out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
fi
out="$(cd "$out" && pwd)"

start=$SECONDS
"$python" -m build --outdir "$out/dist" "$root" > "$out/build.log" 2>&1 || {
    tail -n 40 "$out/build.log"; echo "wheel_smoke: python -m build failed" >&2; exit 1; }
sdist=$(ls "$out"/dist/fastgd-*.tar.gz)
wheel=$(ls "$out"/dist/fastgd-*.whl)
echo "built $(basename "$sdist") and $(basename "$wheel") in $((SECONDS - start)) s"

"$python" "$root/tools/check_dist.py" "$sdist" "$wheel"

start=$SECONDS
"$python" -m venv "$out/venv"
"$out/venv/bin/python" -m pip install --quiet "$wheel" > "$out/install.log" 2>&1 || {
    tail -n 20 "$out/install.log"; echo "wheel_smoke: pip install of the wheel failed" >&2; exit 1; }
echo "installed the wheel into a fresh venv in $((SECONDS - start)) s"
cd "$out"
"$out/venv/bin/python" "$root/tools/smoke.py"
"$out/venv/bin/python" -m fastgd --max-iter 3 --hidden 8 > /dev/null
echo "python -m fastgd ran from the installed wheel"
