#!/usr/bin/env bash
# Builds pkit and runs the demo program (examples/, target pkit_demo).
#
#   PKIT_BUILD_DIR   build directory, relative to the repository (default: build)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup-debian.sh

build_dir="${PKIT_BUILD_DIR:-build}"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j2 --target pkit_demo
exec "$build_dir/examples/pkit_demo" "$@"
