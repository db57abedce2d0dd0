#!/usr/bin/env bash
# Checks pkit's installed CMake package from the side of a project that uses it
# (tests/package/consumer): components, CAF only where needed, and real children started
# by the consumer programs.
#
#   check_package.sh installed BUILD_DIR WORK_DIR
#       Installs the already built BUILD_DIR into WORK_DIR/prefix and checks consumers
#       against it: pkit::core found and working with CAF unfindable; the actors
#       component (when installed) with CAF, and a clear failure without. The CTest test
#       package.install runs this on its own build.
#   check_package.sh core-only WORK_DIR
#       Configures pkit with PKIT_BUILD_ACTORS=OFF and CAF unfindable (tests, examples
#       and benchmarks left on: none of what needs CAF may be configured), builds
#       pkit::core alone, then does `installed` on that build: what .ci/run runs.
#
# PKIT_PACKAGE_CMAKE_ARGS: extra arguments for every configure step (generator, compiler).
# Exit code 0 when every check held; 1 with a message at the first that did not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
consumer_src="$here/consumer"
read -r -a extra <<< "${PKIT_PACKAGE_CMAKE_ARGS:-}"

# CAF made unfindable: find_package(CAF) does nothing, and no hint points at it.
no_caf=(-DCMAKE_DISABLE_FIND_PACKAGE_CAF=ON -DCAF_ROOT=/nonexistent)

fail() {
  echo "check_package: FAIL: $*" >&2
  exit 1
}

# check_consumer NAME PREFIX CAF COMPONENTS OPTIONAL EXPECT
#   CAF: caf | no-caf. COMPONENTS, OPTIONAL: ';'-separated, may be empty.
#   EXPECT: core (core consumer built and run, no actors consumer), core+actors (both),
#   fail:REGEX (configure fails, its output matching REGEX).
check_consumer() {
  local name=$1 prefix=$2 caf=$3 comps=$4 optional=$5 expect=$6
  local dir="$work/consumer-$name"
  rm -rf "$dir" "$dir.log"
  local args=(-S "$consumer_src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    "-DCMAKE_PREFIX_PATH=$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    "-DPKIT_CONSUMER_COMPONENTS=$comps" "-DPKIT_CONSUMER_OPTIONAL_COMPONENTS=$optional")
  [[ $caf == no-caf ]] && args+=("${no_caf[@]}")
  echo "--- consumer $name: COMPONENTS '$comps' OPTIONAL '$optional', $caf: expect $expect"
  if [[ $expect == fail:* ]]; then
    if cmake "${args[@]}" ${extra[@]+"${extra[@]}"} > "$dir.log" 2>&1; then
      cat "$dir.log"
      fail "consumer $name: configured, but should have failed"
    fi
    # CMake re-wraps long messages: match on the text with its line breaks removed.
    if ! tr -s '\n ' '  ' < "$dir.log" | grep -Eq -- "${expect#fail:}"; then
      cat "$dir.log"
      fail "consumer $name: failed without saying /${expect#fail:}/"
    fi
    echo "    failed as expected: $(grep -m1 -E 'Reason given|CMake Error' "$dir.log" || true)"
    return
  fi
  cmake "${args[@]}" ${extra[@]+"${extra[@]}"} > "$dir.log" 2>&1 ||
    { cat "$dir.log"; fail "consumer $name: configure failed"; }
  cmake --build "$dir" -j2 >> "$dir.log" 2>&1 ||
    { cat "$dir.log"; fail "consumer $name: build failed"; }
  "$dir/pkit_core_consumer" || fail "consumer $name: pkit_core_consumer failed"
  if [[ $expect == core+actors ]]; then
    [[ -x $dir/pkit_actors_consumer ]] || fail "consumer $name: no pkit::actors"
    "$dir/pkit_actors_consumer" || fail "consumer $name: pkit_actors_consumer failed"
  elif [[ -e $dir/pkit_actors_consumer ]]; then
    fail "consumer $name: pkit::actors was provided, but should not have been"
  fi
}

# Installs BUILD_DIR into WORK_DIR/prefix and checks consumers against it.
check_installed() {
  local build=$1
  local prefix="$work/prefix"
  rm -rf "$prefix"
  cmake --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "install of $build failed"; }
  local config
  config="$(find "$prefix" -name pkitConfig.cmake -print -quit)"
  [[ -n $config ]] || fail "no pkitConfig.cmake under $prefix"
  local cmakedir
  cmakedir="$(dirname "$config")"

  # pkit::core's part of the package refers to nothing of CAF's.
  if grep -qi caf "$cmakedir"/pkitCoreTargets*.cmake; then
    fail "pkitCoreTargets*.cmake mentions CAF"
  fi
  if grep -rlE '#[[:space:]]*include[[:space:]]*<caf/' --exclude-dir=actors "$prefix/include/pkit"; then
    fail "pkit::core's installed headers include CAF headers (above)"
  fi

  # The central case: a core-only consumer where CAF cannot be found.
  check_consumer core-without-caf "$prefix" no-caf core "" core
  check_consumer unknown-component "$prefix" caf "core;nope" "" "fail:no component 'nope'"

  if [[ -f $cmakedir/pkitActorsTargets.cmake ]]; then
    echo "--- $build installed pkit::core and pkit::actors"
    check_consumer all "$prefix" caf "" "" core+actors
    check_consumer actors "$prefix" caf actors "" core+actors
    check_consumer all-without-caf "$prefix" no-caf "" "" "fail:pkit::actors needs CAF 0.17"
    check_consumer actors-without-caf "$prefix" no-caf actors "" "fail:pkit::actors needs CAF 0.17"
    check_consumer optional-actors-without-caf "$prefix" no-caf core actors core
  else
    echo "--- $build installed pkit::core alone"
    if grep -rlE '#[[:space:]]*include[[:space:]]*<caf/' "$prefix/include"; then
      fail "a core-only install has headers that include CAF headers (above)"
    fi
    [[ ! -e $cmakedir/FindCAF.cmake ]] || fail "a core-only install ships FindCAF.cmake"
    check_consumer all-without-caf "$prefix" no-caf "" "" core
    check_consumer actors "$prefix" caf actors "" "fail:built without its actors component"
    check_consumer optional-actors "$prefix" caf core actors core
  fi
  echo "check_package: the installed package of $build: PASS"
}

mode="${1:-}"
case "$mode" in
  installed)
    [[ $# -eq 3 ]] || fail "usage: $0 installed BUILD_DIR WORK_DIR"
    build="$(cd "$2" && pwd)"
    mkdir -p "$3"
    work="$(cd "$3" && pwd)"
    check_installed "$build"
    ;;
  core-only)
    [[ $# -eq 2 ]] || fail "usage: $0 core-only WORK_DIR"
    mkdir -p "$2"
    work="$(cd "$2" && pwd)"
    build="$work/pkit-build"
    echo "--- pkit with PKIT_BUILD_ACTORS=OFF, CAF unfindable"
    cmake -S "$source_dir" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPKIT_WERROR=ON \
      -DPKIT_BUILD_ACTORS=OFF "${no_caf[@]}" ${extra[@]+"${extra[@]}"} > "$work/configure.log" 2>&1 ||
      { cat "$work/configure.log"; fail "pkit did not configure without CAF"; }
    # Nothing that needs CAF was configured: no actor, supervisor or actor-example test.
    if ctest --test-dir "$build" -N | grep -E 'actors_|supervisor_|actor_process|supervision_tree'; then
      fail "tests that need CAF were configured with PKIT_BUILD_ACTORS=OFF (above)"
    fi
    cmake --build "$build" -j2 --target pkit_core > "$work/build.log" 2>&1 ||
      { cat "$work/build.log"; fail "pkit::core did not build"; }
    check_installed "$build"
    ;;
  *)
    fail "usage: $0 installed BUILD_DIR WORK_DIR | core-only WORK_DIR"
    ;;
esac
