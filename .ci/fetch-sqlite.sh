#!/usr/bin/env bash
# .ci/fetch-sqlite.sh -- fetches an official SQLite amalgamation (sqlite3.c,
# sqlite3.h, sqlite3ext.h, shell.c) into a folder, once: used by
# .ci/windows.sh and .ci/sqlite-versions.sh.
#
#   .ci/fetch-sqlite.sh VERSION DIR     e.g. .ci/fetch-sqlite.sh 3.52.0 build-windeps/sqlite
#   .ci/fetch-sqlite.sh --list          the versions it knows, newest first
#
# The source is the npm package sqlite3, which ships SQLite's own autoconf
# tarball under deps/: `npm pack sqlite3@NPM_VERSION` (npm's own client and
# registry, nothing else), then the tarball's SHA-256 is checked against the
# table below before anything is unpacked.  DIR/.source records what DIR
# holds; a DIR whose record matches is kept as it is (the cache).
#
# To add a version: `npm view sqlite3 versions`, `npm pack sqlite3@V`, look
# at package/deps/sqlite-autoconf-*.tar.gz, add a line below with its SHA-256.
set -euo pipefail

# SQLite version | npm package sqlite3 version | tarball under deps/ | its SHA-256
VERSIONS="
3.52.0 6.0.1 sqlite-autoconf-3520000.tar.gz f6b50b0c103392af32a8be15b2b9d25959de9a00a70c3979128aafeaa5338b3f
3.40.0 5.1.4 sqlite-autoconf-3400000.tar.gz 0333552076d2700c75352256e91c78bf5cd62491589ba0c69aed0a81868980e7
3.39.4 5.1.2 sqlite-autoconf-3390400.tar.gz f31d445b48e67e284cf206717cc170ab63cbe4fd7f79a82793b772285e78fdbb
"

if [ "${1:-}" = --list ]; then
  awk 'NF { print $1 }' <<<"$VERSIONS"
  exit 0
fi
[ $# -eq 2 ] || { echo "usage: $0 VERSION DIR | --list" >&2; exit 2; }
version=$1
dir=$2

read -r _ npm_version tarball sha256 < <(awk -v v="$version" '$1 == v' <<<"$VERSIONS") || true
if [ -z "${tarball:-}" ]; then
  echo "fetch-sqlite.sh: unknown SQLite version $version (known: $(awk 'NF {printf "%s ", $1}' <<<"$VERSIONS"))" >&2
  exit 2
fi
record="sqlite3@$npm_version $tarball $sha256"
if [ -f "$dir/shell.c" ] && [ -f "$dir/.source" ] && [ "$(cat "$dir/.source")" = "$record" ]; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "sqlite3@$npm_version" >/dev/null)
tar -xzf "$tmp"/sqlite3-*.tgz -C "$tmp" "package/deps/$tarball"
echo "$sha256  $tmp/package/deps/$tarball" | sha256sum -c --quiet
rm -rf "$dir" && mkdir -p "$dir"
tar -xzf "$tmp/package/deps/$tarball" -C "$dir" --strip-components=1
grep -q "^#define SQLITE_VERSION *\"$version\"" "$dir/sqlite3.h" || {
  echo "fetch-sqlite.sh: $tarball does not hold SQLite $version" >&2
  exit 1
}
echo "$record" >"$dir/.source"
echo "fetch-sqlite.sh: SQLite $version (sqlite3@$npm_version, $tarball) in $dir"
