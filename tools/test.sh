#!/usr/bin/env bash
# Builds pkit and runs the whole test suite.
#
#   PKIT_BUILD_DIR   build directory, relative to the repository (default: build)
#   PKIT_CMAKE_ARGS  extra arguments for the CMake configure step,
#                    e.g. "-DPKIT_SANITIZE=address -DPKIT_BUILD_BENCH=OFF"
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup-debian.sh

build_dir="${PKIT_BUILD_DIR:-build}"
read -r -a extra_args <<< "${PKIT_CMAKE_ARGS:-}"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPKIT_WERROR=ON \
  ${extra_args[@]+"${extra_args[@]}"}
cmake --build "$build_dir" -j2
ctest --test-dir "$build_dir" --output-on-failure -j2
