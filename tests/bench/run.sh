#!/bin/sh
# tests/bench/run.sh -- builds and runs the benchmark of issue 4.
#
#   tests/bench/run.sh                 full run (several minutes), CSV in build-bench/bench.csv
#   tests/bench/run.sh --quick         small run (< 1 minute; what CI runs)
#   tests/bench/run.sh callgrind [N]   instructions per lookup with valgrind (N entries, default 100000)
#   tests/bench/run.sh ARGS...         any other mmkv_bench options (--reps, --seconds, --only, --clock,
#                                      --phase, --roles, --procs-n; role `own`: each writer on a store
#                                      of its own)
#
# Needs cmake, a C compiler, libsqlite3-dev and liblmdb-dev (valgrind for callgrind).
# BENCH_BUILD names the build directory (default build-bench at the top of the repository).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD:-$top/build-bench}

cmake -S "$top/tests/bench" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 >/dev/null
bench=$build/mmkv_bench

# Ir of one callgrind run of BACKEND:WORKLOAD with N entries and OPS operations,
# divided by PER (the operations, or the rows for a scan).
callgrind_one() {
    out=$build/callgrind.$(echo "$1" | tr ':/' '__').out
    valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
        --toggle-collect=workload_ops "$bench" --callgrind "$1" --n "$2" --ops "$3" \
        >/dev/null 2>&1
    ir=$(sed -n 's/^summary: *//p;s/^totals: *//p' "$out" | head -1 | cut -d' ' -f1)
    printf '  %-22s %8.0f instructions per %-9s (callgrind_annotate %s)\n' "$1" \
        "$(echo "$ir / $4" | bc -l)" "$5" "$out"
}

if [ "${1:-}" = callgrind ]; then
    n=${2:-100000}
    ops=$((n / 2 < 20000 ? n / 2 : 20000)) # deletes need 2 * ops <= n
    echo "callgrind, N=$n: instructions counted inside workload_ops only"
    for w in mmap-sql:lookup array-sql:lookup mem-sql:lookup mmkv-c:lookup lmdb:lookup \
        lmdb-1txn:lookup harness:lookup mmap-sql:put-auto array-sql:put-auto \
        array-txn-sql:put-auto array-lock-sql:put-auto mem-sql:put-auto mmkv-c:put-auto \
        lmdb:put-auto mmap-sql:delete array-sql:delete array-txn-sql:delete \
        array-lock-sql:delete mem-sql:delete mmkv-c:delete mmap-sql16:lookup \
        mmap-sql16:put-auto mmap-sql16:delete; do
        callgrind_one "$w" "$n" "$ops" "$ops" operation
    done
    for w in mmap-sql:scan array-sql:scan mem-sql:scan mmkv-c:scan lmdb:scan; do
        callgrind_one "$w" "$n" 2 "$((2 * n))" row
    done
    exit 0
fi
echo "source: $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
cd "$build"
exec "$bench" --csv "$build/bench.csv" "$@"
