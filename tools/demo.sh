#!/usr/bin/env bash
# Builds the `pkit` command and runs its built-in default tree for a while:
#
#   bash tools/demo.sh            # pkit run --for 15s
#   bash tools/demo.sh --for 1m   # any arguments of `pkit run` instead
#
# The tree (print it with `pkit check`) has a service that gets ready through a readiness
# fd, a worker that crashes every few seconds and is restarted with backoff, and a nested
# one_for_all group. Its events go to stderr; when the time is up it stops the tree in
# order and prints the status table; the exit code is 0 when everything went as expected.
#
#   PKIT_BUILD_DIR   build directory, relative to the repository (default: build)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup-debian.sh

build_dir="${PKIT_BUILD_DIR:-build}"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j2 --target pkit
if [ "$#" -eq 0 ]; then
  set -- --for 15s
fi
exec "$build_dir/tools/pkit/pkit" run "$@"
