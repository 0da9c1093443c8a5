#!/bin/sh
# check-exports.sh [LIB] — libsketchgn.so must export exactly the functions declared in the public
# headers (include/sketchgn.h, include/sketchgn_io.h): nothing undocumented exported, nothing
# documented missing. The declared names come from the preprocessed headers (comments gone), the
# exported ones from `nm -D --defined-only`. Prints both counts and any difference; exit 1 on one.
# `make test` runs it on build/libsketchgn.so.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
lib=${1:-$root/build/libsketchgn.so}
cc=${CC:-cc}
headers="include/sketchgn.h include/sketchgn_io.h"

[ -e "$lib" ] || { echo "check-exports: no $lib (run make)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A function declaration is an identifier followed by "(" outside of parentheses: that leaves out
# function-pointer typedefs ("(*sgn_progress_fn)(") and parameter names.
for h in $headers; do printf '#include "%s"\n' "$h"; done |
  (cd "$root" && "$cc" -std=c11 -E -P -Iinclude -x c -) |
  awk '{
    line = $0
    while (match(line, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(|[()]/)) {
      tok = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
      if (tok == ")") { depth--; continue }
      if (tok == "(") { depth++; continue }
      if (depth == 0) { sub(/[ \t]*\($/, "", tok); print tok }
      depth++
    }
  }' | grep '^sgn_' | sort -u > "$tmp/declared"

# Functions (T, W, i) are compared by name; any exported data object is extra in any case.
nm -D --defined-only "$lib" | sed 's/@.*//' > "$tmp/nm"
awk 'NF >= 3 && $2 ~ /^[TWi]$/ { print $3 }' "$tmp/nm" | sort -u > "$tmp/exported"
awk 'NF >= 3 && $2 !~ /^[TWi]$/ { print $3 " (not a function: nm type " $2 ")" }' "$tmp/nm" \
  > "$tmp/data"

{ comm -13 "$tmp/declared" "$tmp/exported"; cat "$tmp/data"; } > "$tmp/extra"
comm -23 "$tmp/declared" "$tmp/exported" > "$tmp/missing"
echo "check-exports: $(wc -l < "$tmp/nm") symbols exported by ${lib#"$root"/}," \
  "$(wc -l < "$tmp/declared") functions declared in $headers"
status=0
if [ -s "$tmp/extra" ]; then
  echo "  exported but not declared in a public header ($(wc -l < "$tmp/extra")):"
  sed 's/^/    /' "$tmp/extra"
  status=1
fi
if [ -s "$tmp/missing" ]; then
  echo "  declared in a public header but not exported, a missing SGN_API?" \
    "($(wc -l < "$tmp/missing")):"
  sed 's/^/    /' "$tmp/missing"
  status=1
fi
[ $status = 0 ] && echo "  ok: the exports are exactly the public API"
exit $status
