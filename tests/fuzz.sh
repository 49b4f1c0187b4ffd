#!/bin/sh
# fuzz.sh -- builds the libFuzzer target tests/fuzz_mapping.c with clang
# (ASan + UBSan) and fuzzes the mapping for a while.
#
# Usage: tests/fuzz.sh [SECONDS [LIBFUZZER OPTIONS...]]     (default 60 s)
#   e.g. tests/fuzz.sh 600 -jobs=2 -workers=2
#
# Builds in build-fuzz/ (-DCMAKE_C_COMPILER=clang -DMMKV_FUZZ=ON) and fuzzes
# in build-fuzz/corpus/, seeded with tests/fuzz_corpus/ (whose bug-* files
# are the inputs of bugs found so far).  A crash is written to
# build-fuzz/artifacts/ and the script fails; replay one with
#   FUZZ_TRACE=1 build-fuzz/tests/fuzz_mapping ARTIFACT
# to see each command.  To fold new inputs into the committed corpus (keep
# it small: edges only):
#   build-fuzz/tests/fuzz_mapping -merge=1 -use_counters=0 tests/fuzz_corpus build-fuzz/corpus
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
build=$root/build-fuzz
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DMMKV_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_mapping -j2
mkdir -p "$build/corpus" "$build/artifacts"
cp "$root"/tests/fuzz_corpus/* "$build/corpus/"
exec "$build/tests/fuzz_mapping" -max_total_time="$secs" -timeout=10 -max_len=1024 \
     -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$@" "$build/corpus"
