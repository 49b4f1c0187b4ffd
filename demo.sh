#!/usr/bin/env bash
# demo.sh -- the two-process demo of the `mmap` virtual table.
#
# On a fresh Debian machine it installs what is missing (cmake, gcc,
# libsqlite3-dev, sqlite3, libcmocka-dev; as root, or through sudo),
# configures and builds into build/ (Release), then runs two sqlite3 shells
# side by side on one shared-memory mapping: a writer sets a few keys, a
# reader opens the same mapping and sees them, both increment one counter
# (also 500 times each at the same moment: nothing is lost), and the reader
# prints the table.  The mapping is removed at the end.
#
# Usage: ./demo.sh
set -eu

cd "$(dirname "$0")"
ROOT=$(pwd)
BUILD="$ROOT/build"
PACKAGES="cmake gcc libsqlite3-dev sqlite3 libcmocka-dev"

# ---- 1. dependencies -------------------------------------------------------
missing=""
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"
[ -e /usr/include/sqlite3ext.h ] || missing="$missing libsqlite3-dev"
[ -e /usr/include/cmocka.h ] || missing="$missing libcmocka-dev"
if [ -n "$missing" ]; then
  echo "== installing missing packages:$missing"
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "demo.sh: missing:$missing; run as root: apt-get update && apt-get install -y $PACKAGES" >&2
    exit 1
  fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $PACKAGES
fi

# ---- 2. build ---------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "== configuring build/ (Release)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
echo "== building build/mmap.so"
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
[ -f "$BUILD/mmap.so" ] || { echo "demo.sh: build/mmap.so was not built" >&2; exit 1; }

# ---- 3. two sqlite3 shells on one mapping -----------------------------------
NAME="demo-$$"
TMP=$(mktemp -d /tmp/sqlite-mmap-demo.XXXXXX)
W_PID=
R_PID=
cleanup() {
  for pid in $W_PID $R_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  sqlite3 -batch :memory: ".load ./build/mmap" "SELECT mmap_unlink('$NAME');" >/dev/null 2>&1 || true
  rm -f "/dev/shm/sqlite-mmap.$NAME"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_shell WHO: starts a sqlite3 process that reads from a FIFO; sets
# <WHO>_PID, <WHO>_IN and <WHO>_OUT (file descriptors).
start_shell() {
  mkfifo "$TMP/$1.in" "$TMP/$1.out"
  sqlite3 -batch <"$TMP/$1.in" >"$TMP/$1.out" 2>&1 &
  eval "${1}_PID=$!"
  eval "exec {${1}_IN}>\"$TMP/$1.in\""
  eval "exec {${1}_OUT}<\"$TMP/$1.out\""
}

# send WHO SQL...: types lines into a shell without echoing them.
send() {
  local who=$1 fd
  shift
  eval "fd=\$${who}_IN"
  printf '%s\n' "$@" >&"$fd"
}

# replies WHO LABEL: prints the shell's output up to a marker, each line
# prefixed with LABEL.
replies() {
  local fd line
  eval "fd=\$${1}_IN"
  printf "SELECT '__done__';\n" >&"$fd"
  eval "fd=\$${1}_OUT"
  while IFS= read -r -t 30 -u "$fd" line; do
    [ "$line" = "__done__" ] && return 0
    printf '%-10s %s\n' "" "$line"
  done
  echo "demo.sh: the $2 shell did not answer" >&2
  exit 1
}

# run WHO LABEL SQL...: shows and runs each line in the shell, then its output.
run() {
  local who=$1 label=$2 l
  shift 2
  for l in "$@"; do
    printf '%-10s sqlite> %s\n' "[$label]" "$l"
    send "$who" "$l"
    replies "$who" "$label"
  done
}

start_shell W
start_shell R
echo
echo "== two sqlite3 processes: writer (pid $W_PID) and reader (pid $R_PID), mapping '$NAME'"
echo
run W writer ".load ./build/mmap" \
  "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$NAME', size='1M');" \
  "INSERT INTO cfg VALUES ('greeting', 'hello'), ('answer', 42), ('pi', 3.14159), ('hits', 0);"
echo
run R reader ".load ./build/mmap" \
  "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$NAME', mode='open');" \
  "SELECT key, value, typeof(value) FROM cfg ORDER BY key;"
echo
echo "-- both shells increment the counter 'hits'"
for i in 1 2; do
  run W writer "UPDATE cfg SET value = value + 1 WHERE key = 'hits';"
  run R reader "UPDATE cfg SET value = value + 1 WHERE key = 'hits';"
done
run W writer "SELECT value FROM cfg WHERE key = 'hits';"
echo
echo "-- now 500 increments from each shell at the same moment"
INC=$(for i in $(seq 500); do echo "UPDATE cfg SET value = value + 1 WHERE key = 'hits';"; done)
printf '%-10s sqlite> %s   -- x500\n' "[writer]" "UPDATE cfg SET value = value + 1 WHERE key = 'hits';"
printf '%-10s sqlite> %s   -- x500\n' "[reader]" "UPDATE cfg SET value = value + 1 WHERE key = 'hits';"
send W "$INC"
send R "$INC"
replies W writer
replies R reader
echo
run W writer "UPDATE cfg SET value = 'hello from the writer' WHERE key = 'greeting';"
run R reader "SELECT key, value, typeof(value) FROM cfg ORDER BY key;" \
  "SELECT mmap_info('cfg');" "SELECT mmap_check('cfg');"
echo
HITS=$(sqlite3 -batch :memory: ".load ./build/mmap" \
  "CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$NAME', mode='open');" \
  "SELECT value FROM cfg WHERE key = 'hits';")
if [ "$HITS" = 1004 ]; then
  echo "== a third process reads hits = $HITS: 4 + 2 x 500 increments, none lost"
else
  echo "== a third process reads hits = $HITS, expected 1004" >&2
  exit 1
fi
send W ".quit"
send R ".quit"
wait "$W_PID" "$R_PID" || true
W_PID= R_PID=
echo "== removing the mapping: mmap_unlink('$NAME')"
sqlite3 -batch :memory: ".load ./build/mmap" "SELECT mmap_unlink('$NAME');" >/dev/null
echo "== done"
