#!/usr/bin/env bash
# .ci/sqlite-versions.sh -- the extension against SQLite versions other than
# the system's (Debian's 3.40.1, which ./test.sh uses):
#
#   newest   3.52.0  the project built against it (tests/versions/CMakeLists.txt:
#                    static library and sqlite3 shell from the amalgamation);
#                    runs the SQL tests (sql_*), test_vtab, test_multiproc,
#                    test_crash, test_diff and the walkthrough with its shell;
#   oldest   3.40.0  the oldest supported release: the same tests;
#   too old  3.39.4  its shell (-O0) must refuse `.load mmap` with "mmap: needs
#                    SQLite 3.40.0 or newer, this is 3.39.4", for mmap.so
#                    built against each of the three headers (3.52.0, 3.40.0
#                    and the system's, as in the default build).
#
# The amalgamations come from .ci/fetch-sqlite.sh (npm, SHA-256 checked),
# cached in build-sqlite-deps/; build folders build-sqlite-{new,min,old}.
# Release builds only.  Prints "sqlite-versions: N passed, M failed" (CTest
# tests plus the load checks) and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

NEWEST=3.52.0
OLDEST=3.40.0
TOO_OLD=3.39.4
TESTS='^(sql_.*|test_vtab|test_multiproc|test_crash|test_diff|walkthrough)$'
TARGETS="sqlite3_shell mmap sqlrun test_vtab test_multiproc test_crash test_diff"

deps=$root/build-sqlite-deps
passed=0
failed=0

step() { echo "== sqlite-versions: $* ($(($(date +%s) - start))s) =="; }

# check STATUS DESCRIPTION: counts and prints "ok - ..." or "not ok - ...".
check() {
  if [ "$1" = 0 ]; then
    echo "ok - $2"
    passed=$((passed + 1))
  else
    echo "not ok - $2"
    failed=$((failed + 1))
  fi
}

# Installs the Debian packages that are missing (npm may come from elsewhere).
install_packages() {
  local want=(cmake make gcc libc6-dev libsqlite3-dev libcmocka-dev) missing=()
  command -v npm >/dev/null || want+=(npm)
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update
    apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}"
  fi
}

# configure DIR VERSION [CMAKE ARGS...]: build folder DIR for that SQLite.
configure() {
  local dir=$1 version=$2
  shift 2
  cmake -S tests/versions -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DMMKV_SQLITE_DIR="$deps/$version" "$@" >/dev/null
}

# run_tests DIR VERSION: the CTest tests with DIR's shell as `sqlite3`;
# adds CTest's counts to the totals.
run_tests() {
  local dir=$1 version=$2 log=$1/ctest-versions.log rc summary total nfail
  local shell_version
  shell_version=$(PATH="$dir:$PATH" sqlite3 --version | cut -d' ' -f1)
  [ "$shell_version" = "$version" ] || {
    check 1 "sqlite3 on PATH is SQLite $version (it is $shell_version)"
    return
  }
  set +e
  (cd "$dir" && SQLITE3="$dir/sqlite3" PATH="$dir:$PATH" \
    ctest --output-on-failure -R "$TESTS") | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" || true)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
  nfail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")
  if [ -z "$summary" ] || [ "${total:-0}" -eq 0 ]; then
    check 1 "SQLite $version: CTest ran tests (none ran)"
    return
  fi
  echo "SQLite $version: $((total - nfail)) of $total CTest tests passed"
  passed=$((passed + total - nfail))
  failed=$((failed + nfail))
  [ "$rc" -eq 0 ] || [ "$nfail" -gt 0 ] || check 1 "SQLite $version: ctest exit status $rc"
}

step "install packages"
install_packages

step "fetch SQLite $NEWEST, $OLDEST, $TOO_OLD"
for v in "$NEWEST" "$OLDEST" "$TOO_OLD"; do
  .ci/fetch-sqlite.sh "$v" "$deps/$v"
done

new=$root/build-sqlite-new
min=$root/build-sqlite-min
old=$root/build-sqlite-old
# The three builds run side by side (each mostly waits on its one sqlite3.c);
# each one's output goes to DIR/build.log, shown if it fails.
# build DIR VERSION TARGETS [CMAKE ARGS...]
build() {
  local dir=$1 version=$2 targets=$3
  shift 3
  mkdir -p "$dir"
  {
    # shellcheck disable=SC2086 # TARGETS is a list of words
    configure "$dir" "$version" "$@" && cmake --build "$dir" -j "$(nproc)" --target $targets
  } >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; echo "build of $dir failed"; return 1; }
}
step "build against SQLite $NEWEST ($new), $OLDEST ($min), $TOO_OLD ($old: shell and mmap.so only)"
build "$new" "$NEWEST" "$TARGETS" &
pid_new=$!
build "$min" "$OLDEST" "$TARGETS" &
pid_min=$!
build "$old" "$TOO_OLD" "sqlite3_shell mmap" -DMMKV_EXT_AMALGAMATION_HEADERS=OFF -DMMKV_SQLITE_OPT=-O0 &
pid_old=$!
builds_ok=0
for pid in "$pid_new" "$pid_min" "$pid_old"; do wait "$pid" || builds_ok=1; done
check $builds_ok "the three builds succeed"
[ $builds_ok = 0 ] || { echo "sqlite-versions: $passed passed, $failed failed"; exit 1; }

step "tests against SQLite $NEWEST"
run_tests "$new" "$NEWEST"
step "tests against SQLite $OLDEST"
run_tests "$min" "$OLDEST"

step "load checks"
name="versions-$$-$RANDOM"
for ext in "$new" "$min" "$old"; do
  hdr=$(sed -n 's/^#define SQLITE_VERSION *"\(.*\)"/\1/p' \
    "$(sed -n 's/^SQLITE3_INCLUDE_DIR:PATH=//p' "$ext/CMakeCache.txt")/sqlite3.h")
  what="mmap.so built with SQLite $hdr's sqlite3ext.h"

  # The oldest supported SQLite loads it and uses it.
  out=$("$min/sqlite3" -batch :memory: ".load '$ext/mmap'" \
    "CREATE VIRTUAL TABLE temp.t USING mmap(name='$name', size='64K');" \
    "INSERT INTO t VALUES ('k', 42);" "SELECT key, value, sqlite_version() FROM t;" \
    "SELECT mmap_unlink('$name');" 2>&1) && rc=0 || rc=$?
  { [ "$rc" = 0 ] && [ "$out" = $'k|42|'"$OLDEST"$'\n1' ]; } && ok=0 || ok=1
  check "$ok" "SQLite $OLDEST loads $what and uses a table (status $rc: $(tr '\n' ' ' <<<"$out"))"

  # A too-old one refuses it at load time, with the message, and has no module afterwards.
  out=$("$old/sqlite3" -batch :memory: ".load '$ext/mmap'" 2>&1) && rc=0 || rc=$?
  { [ "$rc" != 0 ] && grep -qF "mmap: needs SQLite 3.40.0 or newer, this is $TOO_OLD" <<<"$out"; } &&
    ok=0 || ok=1
  check "$ok" "SQLite $TOO_OLD refuses $what (status $rc: $(tr '\n' ' ' <<<"$out"))"
  out=$(printf '%s\n' ".load '$ext/mmap'" "CREATE VIRTUAL TABLE temp.t USING mmap(name='$name');" |
    "$old/sqlite3" -batch :memory: 2>&1) || true
  { grep -qF "no such module: mmap" <<<"$out" && [ ! -e "/dev/shm/sqlite-mmap.$name" ]; } &&
    ok=0 || ok=1
  check "$ok" "after the refusal SQLite $TOO_OLD has no mmap module (got: $(tr '\n' ' ' <<<"$out"))"
done
rm -f "/dev/shm/sqlite-mmap.$name"

step "done"
echo "sqlite-versions: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
