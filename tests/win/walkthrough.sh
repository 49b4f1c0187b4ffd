#!/usr/bin/env bash
# walkthrough.sh -- the README walkthrough with two Windows sqlite3.exe
# processes under Wine, and the Windows lifetime rules:
#   1. terminal 1 creates mapping 'alpha' (a unique name) and inserts rows;
#   2. terminal 2, while terminal 1 is still open, opens it with mode='open'
#      and reads the rows back;
#   3. after terminal 1 quits, mode='open' fails with "no such mapping": a
#      named mapping lives only while a process holds it (on Linux it stays
#      until mmap_unlink);
#   4. a file mapping persists after its process quits, on both platforms.
#
# Usage: walkthrough.sh SQLITE3_EXE MMAP_DLL WINE64
# (WINEPREFIX and WINEDEBUG come from the environment, as .ci/windows.sh sets
# them).  Prints one "ok"/"not ok" line per check, then "N passed, M failed".
set -u
shell_exe=$1 dll=${2%.dll} wine=$3
name="walk$$"
work=$(mktemp -d)
passed=0 failed=0
trap 'exec 3>&- 2>/dev/null; rm -rf "$work"' EXIT

# check LABEL COMMAND...: runs COMMAND; counts and prints the outcome.
check() {
  local label=$1
  shift
  if "$@"; then
    echo "ok - $label"
    passed=$((passed + 1))
  else
    echo "not ok - $label"
    failed=$((failed + 1))
  fi
}

# terminal2 SQL...: runs a second sqlite3.exe with the lines given; prints
# its output (both streams) without carriage returns.
terminal2() {
  printf '%s\n' ".load $dll" "$@" | "$wine" "$shell_exe" 2>&1 | tr -d '\r'
}

# Terminal 1 stays open, reading from a FIFO.
mkfifo "$work/t1.in"
"$wine" "$shell_exe" <"$work/t1.in" >"$work/t1.out" 2>&1 &
t1=$!
exec 3>"$work/t1.in"
printf '%s\n' ".load $dll" \
  "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$name', size='1M');" \
  "INSERT INTO cfg VALUES ('foo', 'hello'), ('bar', 77);" \
  "SELECT 'ready';" >&3
for _ in $(seq 1 300); do
  grep -q ready "$work/t1.out" 2>/dev/null && break
  sleep 0.1
done
check "terminal 1 created the mapping" grep -q ready "$work/t1.out"

want=$'bar|77|integer\nfoo|hello|text'
got=$(terminal2 "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$name', mode='open');" \
  "SELECT key, value, typeof(value) FROM cfg ORDER BY key;")
check "terminal 2 reads the rows while terminal 1 is open" test "$got" = "$want"

got=$(terminal2 "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$name', mode='open');" \
  "UPDATE cfg SET value = value + 1 WHERE key = 'bar';")
echo "SELECT 'bar=' || value FROM cfg WHERE key = 'bar';" >&3
for _ in $(seq 1 300); do
  grep -q "bar=" "$work/t1.out" && break
  sleep 0.1
done
check "terminal 1 sees terminal 2's update" grep -q "bar=78" "$work/t1.out"

echo ".quit" >&3
exec 3>&-
wait "$t1"
check "terminal 1 quit cleanly" test $? -eq 0

got=$(terminal2 "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$name', mode='open');")
check "after terminal 1 quit, mode='open' says no such mapping (Windows lifetime)" \
  grep -q "no such mapping: $name" <<<"$got"
got=$(terminal2 "SELECT mmap_unlink('$name');")
check "and mmap_unlink returns 0" test "$got" = "0"

file="$work/walk.mmap"
terminal2 "CREATE VIRTUAL TABLE temp.f USING mmap(file='$file', size='64K');" \
  "INSERT INTO f VALUES ('kept', 'on disk');" >/dev/null
got=$(terminal2 "CREATE VIRTUAL TABLE temp.f USING mmap(file='$file', mode='open');" \
  "SELECT value FROM f WHERE key = 'kept';")
check "a file mapping outlives the process that made it" test "$got" = "on disk"

echo "walkthrough: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
