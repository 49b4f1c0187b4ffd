#!/usr/bin/env bash
# Builds the extension and runs every test (the README's test command).
#
#   ./test.sh              Release build in build/, all tests
#   ./test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build
#                          in build-asan/, all tests
#
# On a fresh Debian machine it first installs what is missing (apt-get).
set -euo pipefail
cd "$(dirname "$0")"

packages=(cmake make gcc libc6-dev libsqlite3-dev sqlite3 libcmocka-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

dir=build
opts=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMKV_SANITIZE=ON)
  # Programs that are not built with the sanitizers (the sqlite3 shell) load
  # the sanitized extension only with the runtime preloaded.
  MMKV_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
  export MMKV_PRELOAD
  export ASAN_OPTIONS=abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cmake -S . -B "$dir" "${opts[@]}"
cmake --build "$dir" -j "$(nproc)"
cd "$dir"
ctest --output-on-failure --timeout 900
