#!/usr/bin/env bash
# walkthrough.sh -- the README walkthrough, run with two real sqlite3 shells.
#
# Terminal 1 is a sqlite3 process kept open on a FIFO: it loads the
# extension, creates temp.cfg on a new named mapping and inserts
# ('foo','hello'), ('bar',77).  Terminal 2 is a second sqlite3 process that
# opens the same mapping with mode='open' and must print exactly
#     bar|77|integer
#     foo|hello|text
# once while terminal 1 is still running and once after it quit.  Also
# checked: a change made by terminal 2 is seen by terminal 1, mode='open' on
# a missing name prints "mmap: no such mapping: <name>", and mmap_unlink
# removes the mapping.  Mappings are unlinked at the end, also on failure.
#
# Usage: tests/walkthrough.sh BUILD_DIR   (the folder that holds mmap.so)
set -u

BUILD=${1:?usage: walkthrough.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1
EXT="$BUILD/mmap"
[ -f "$EXT.so" ] || { echo "walkthrough.sh: no $EXT.so (build first)" >&2; exit 1; }
SQLITE3=${SQLITE3:-sqlite3}
NAME="walkthrough-$$-$RANDOM"
MISSING="walkthrough-missing-$$-$RANDOM"
TMP=$(mktemp -d /tmp/walkthrough.XXXXXX)
PASSED=0
FAILED=0
SH1_PID=

# Under AddressSanitizer the system sqlite3 must load the ASan runtime first.
if command -v ldd >/dev/null && [ -e "$EXT.so" ]; then
  ASAN_LIB=$(ldd "$EXT.so" | awk '/libasan/ {print $3; exit}')
  if [ -n "${ASAN_LIB:-}" ]; then
    export LD_PRELOAD="$ASAN_LIB${LD_PRELOAD:+:$LD_PRELOAD}"
    export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  fi
fi

# check CONDITION-RESULT DESCRIPTION: prints "ok - ..." or "not ok - ...".
check() {
  if [ "$1" = 0 ]; then
    echo "ok - $2"
    PASSED=$((PASSED + 1))
  else
    echo "not ok - $2"
    FAILED=$((FAILED + 1))
  fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
  if [ "$2" = "$3" ]; then
    check 0 "$1"
  else
    check 1 "$1"
    printf '  expected:\n%s\n  got:\n%s\n' "$2" "$3" | sed 's/^/    /'
  fi
}

cleanup() {
  if [ -n "$SH1_PID" ] && kill -0 "$SH1_PID" 2>/dev/null; then
    kill "$SH1_PID" 2>/dev/null
    wait "$SH1_PID" 2>/dev/null
  fi
  "$SQLITE3" -batch :memory: ".load '$EXT'" "SELECT mmap_unlink('$NAME');" >/dev/null 2>&1
  rm -f "/dev/shm/sqlite-mmap.$NAME" "/dev/shm/sqlite-mmap.$MISSING"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Terminal 1: a sqlite3 process reading from a FIFO, output to another.
mkfifo "$TMP/sh1.in" "$TMP/sh1.out"
"$SQLITE3" -batch <"$TMP/sh1.in" >"$TMP/sh1.out" 2>&1 &
SH1_PID=$!
exec {SH1_IN}>"$TMP/sh1.in"
exec {SH1_OUT}<"$TMP/sh1.out"

# sh1 SQL...: sends lines to terminal 1, then prints everything it printed
# in reply (a marker query tells where the reply ends).
sh1() {
  local line
  printf '%s\n' "$@" "SELECT '__done__';" >&"$SH1_IN"
  while IFS= read -r -t 20 -u "$SH1_OUT" line; do
    [ "$line" = "__done__" ] && return 0
    printf '%s\n' "$line"
  done
  echo "(terminal 1 did not answer)"
  return 1
}

# sh2 SQL...: runs a new sqlite3 process (terminal 2) with these lines.
sh2() {
  printf '%s\n' "$@" | "$SQLITE3" -batch 2>&1
}

echo "# mapping $NAME, extension $EXT"

out=$(sh1 ".load '$EXT'" \
  "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$NAME', size='1M');" \
  "INSERT INTO cfg VALUES ('foo', 'hello'), ('bar', 77);")
expect_eq "terminal 1 loads the extension, creates temp.cfg and inserts two rows silently" "" "$out"

WANT=$'bar|77|integer\nfoo|hello|text'
SELECT_ALL="SELECT key, value, typeof(value) FROM cfg ORDER BY key;"
OPEN="CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$NAME', mode='open');"

out=$(sh2 ".load '$EXT'" "$OPEN" "$SELECT_ALL")
expect_eq "terminal 2, while terminal 1 is running, prints the two rows exactly" "$WANT" "$out"

out=$(sh2 ".load '$EXT'" "$OPEN" "UPDATE cfg SET value = value + 1 WHERE key = 'bar';" \
  "INSERT INTO cfg VALUES ('baz', 2.5);")
expect_eq "terminal 2 updates bar and inserts baz without error" "" "$out"

out=$(sh1 "$SELECT_ALL")
expect_eq "terminal 1 sees terminal 2's changes at once" \
  $'bar|78|integer\nbaz|2.5|real\nfoo|hello|text' "$out"

out=$(sh1 "UPDATE cfg SET value = 77 WHERE key = 'bar';" "DELETE FROM cfg WHERE key = 'baz';" \
  "SELECT count(*) FROM cfg;")
expect_eq "terminal 1 puts the table back as it was" "2" "$out"

printf '.quit\n' >&"$SH1_IN"
exec {SH1_IN}>&-
wait "$SH1_PID"
rc=$?
SH1_PID=
exec {SH1_OUT}<&-
check "$rc" "terminal 1 quits with status 0 (status $rc)"

out=$(sh2 ".load '$EXT'" "$OPEN" "$SELECT_ALL")
expect_eq "terminal 2, after terminal 1 quit, prints the two rows exactly" "$WANT" "$out"

out=$(sh2 ".load '$EXT'" "$OPEN" "SELECT mmap_check('cfg');")
expect_eq "mmap_check('cfg') is ok" "ok" "$out"

out=$(sh2 ".load '$EXT'" "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$MISSING', mode='open');")
case "$out" in
  *"mmap: no such mapping: $MISSING"*) check 0 "mode='open' on a missing name prints 'mmap: no such mapping: $MISSING'" ;;
  *) check 1 "mode='open' on a missing name prints 'mmap: no such mapping: $MISSING' (got: $out)" ;;
esac
[ -e "/dev/shm/sqlite-mmap.$MISSING" ]
check $((1 - $?)) "the failed open left no mapping behind"

out=$(sh2 ".load '$EXT'" "SELECT mmap_unlink('$NAME');")
expect_eq "mmap_unlink('$NAME') returns 1" "1" "$out"
out=$(sh2 ".load '$EXT'" "$OPEN")
case "$out" in
  *"no such mapping: $NAME"*) check 0 "after mmap_unlink the mapping is gone" ;;
  *) check 1 "after mmap_unlink the mapping is gone (got: $out)" ;;
esac

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
