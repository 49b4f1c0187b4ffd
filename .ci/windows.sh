#!/usr/bin/env bash
# .ci/windows.sh -- the Windows part of CI: cross-builds mmap.dll, a Windows
# sqlite3.exe and the Windows tests with MinGW-w64, then runs the tests under
# Wine.  Prints "N passed, M failed" (CTest's count) and exits non-zero on any
# failure.  See WINDOWS.md.
#
#   .ci/windows.sh            everything: install, fetch, build, test
#
# What it fetches, each only through its own registry's client, and caches
# under build-windeps/ (ignored by git):
#   - the SQLite amalgamation with shell.c: the autoconf tarball that the npm
#     package sqlite3 ships under deps/ (`npm pack`, a pinned version and the
#     tarball's SHA-256 checked: .ci/fetch-sqlite.sh, shared with
#     .ci/sqlite-versions.sh);
#   - cmocka's Debian source package (`apt-get source`, from a deb-src list
#     made from this machine's own apt sources), built for MinGW.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

# The SQLite that the Windows programs are built from (.ci/fetch-sqlite.sh
# knows where it comes from: sqlite3@6.0.1 on npm, and its SHA-256).
SQLITE_VERSION=3.52.0

deps=$root/build-windeps
bwin=$root/build-win
mkdir -p "$deps"

# Prints a step's name with the seconds since the start.
step() { echo "== windows: $* ($(($(date +%s) - start))s) =="; }

# Installs the Debian packages that are missing.
install_packages() {
  local want=(cmake make gcc-mingw-w64-x86-64 wine wine64 npm libsqlite3-dev dpkg-dev xz-utils)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # npm may come from elsewhere (e.g. a nodesource nodejs): then keep it.
  if command -v npm >/dev/null; then
    local kept=()
    for p in "${missing[@]}"; do [ "$p" = npm ] || kept+=("$p"); done
    missing=("${kept[@]}")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update
    apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}"
  fi
}

# Unpacks the SQLite amalgamation (sqlite3.c, sqlite3.h, shell.c) into
# $deps/sqlite unless it is there already.
fetch_sqlite() {
  "$root/.ci/fetch-sqlite.sh" "$SQLITE_VERSION" "$deps/sqlite"
}

# Builds cmocka for MinGW from Debian's source package into $deps/cmocka
# unless it is there already.  The deb-src list is this machine's own apt
# sources with "Types: deb" turned into "Types: deb-src", used through a
# private apt configuration (the system's is not changed).
build_cmocka() {
  [ -f "$deps/cmocka/lib/libcmocka-static.a" ] && return 0
  local tmp apt
  tmp=$(mktemp -d)
  mkdir -p "$tmp/parts" "$tmp/lists/partial"
  : >"$tmp/empty.list"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed 's/^Types:.*\bdeb\b.*$/Types: deb-src/' "$f" >"$tmp/parts/$(basename "$f")"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f" >>"$tmp/parts/from-lists.list"
  done
  apt=(apt-get -o Dir::Etc::SourceList="$tmp/empty.list" -o Dir::Etc::SourceParts="$tmp/parts"
    -o Dir::State::Lists="$tmp/lists" -o APT::Sandbox::User=root)
  "${apt[@]}" update >/dev/null || echo "windows.sh: apt-get update of the deb-src list reported errors; trying anyway"
  (cd "$tmp" && "${apt[@]}" source cmocka >/dev/null)
  local src
  src=$(find "$tmp" -maxdepth 1 -type d -name 'cmocka-*' | head -n1)
  cmake -S "$src" -B "$tmp/build" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF \
    -DCMAKE_INSTALL_PREFIX="$deps/cmocka" >/dev/null
  cmake --build "$tmp/build" -j "$(nproc)" >/dev/null
  cmake --install "$tmp/build" >/dev/null
  rm -rf "$tmp"
}

step "install packages"
install_packages
step "fetch the SQLite amalgamation"
fetch_sqlite
step "build cmocka for MinGW"
build_cmocka
step "configure and build (cmake/mingw-w64.cmake)"
cmake -S . -B "$bwin" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64.cmake" \
  -DMMKV_WIN_SQLITE_DIR="$deps/sqlite" -DMMKV_WIN_CMOCKA_DIR="$deps/cmocka" >/dev/null
cmake --build "$bwin" -j "$(nproc)"

step "check mmap.dll: exports and imports"
dump=$(x86_64-w64-mingw32-objdump -p "$bwin/mmap.dll")
grep -q '\] sqlite3_mmap_init$' <<<"$dump" || { echo "mmap.dll does not export sqlite3_mmap_init"; exit 1; }
imports=$(sed -n 's/^\s*DLL Name: //p' <<<"$dump" | tr 'A-Z' 'a-z' | sort -u | tr '\n' ' ')
echo "mmap.dll imports: $imports"
for dll in $imports; do
  case $dll in
  kernel32.dll | advapi32.dll | msvcrt.dll | ucrtbase.dll | api-ms-win-*) ;;
  *) echo "mmap.dll imports $dll, which is not a system DLL"; exit 1 ;;
  esac
done

# Wine: a private prefix, headless.  The first Wine process of a prefix
# starts background services that inherit its stdout; started here, with
# their output sent nowhere, before CTest runs anything, so that no test's
# pipe is held open by them.  The server is stopped at the end.
step "start Wine"
export WINEPREFIX=$bwin/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
mkdir -p "$WINEPREFIX"
wine64=$(command -v wine64 || echo /usr/lib/wine/wine64)
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
wineserver -p </dev/null >/dev/null 2>&1
"$wine64" cmd /c exit </dev/null >/dev/null 2>&1

step "run the Windows tests under Wine"
set +e
(cd "$bwin" && ctest --output-on-failure --timeout 900) | tee "$bwin/ctest.log"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$bwin/ctest.log" || true)
total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")
if [ -z "$summary" ] || [ "${total:-0}" -eq 0 ]; then
  echo "windows: no test ran"
  exit 1
fi
step "done"
echo "windows: $((total - failed)) passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
