#!/usr/bin/env bash
# Developer helper: rebuild the kernels and swap the .so in atomically (rename), so
# Python processes that have the old one loaded keep running.
set -euo pipefail
cd "$(dirname "$0")"
# With the test-only kernels (fastgd._kernels_testing) unless told otherwise.
export FASTGD_TEST_KERNELS="${FASTGD_TEST_KERNELS:-1}"
tmp=$(mktemp -d)
python setup.py build_ext --build-lib "$tmp" --build-temp "$tmp/t" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
for so in "$tmp"/fastgd/*.so; do mv -f "$so" fastgd/; done
rm -rf "$tmp"
