#!/bin/sh
# check-cycles.sh [BUILD] — no two object files of the library (BUILD/src/**/*.o, the CUDA
# plugin's BUILD/src/backend/cuda/*.o among them) may depend on each other. From `nm`, object A
# depends on B when A leaves undefined a global symbol that B defines (strongly: weak definitions,
# which C++ inline functions and templates put in every object that uses them, do not count).
# Prints every pair that depends both ways with the symbols each side uses, then every longer
# simple cycle (a DFS over the dependency graph, up to 8 objects), and exits 1 if there is any.
# `make test` runs it on build/.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -d "$build/src" ] || { echo "check-cycles: no $build/src (run make)" >&2; exit 2; }

objs=$(cd "$build" && find src -name '*.o' | LC_ALL=C sort)
[ -n "$objs" ] || { echo "check-cycles: no object files under $build/src (run make)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one line per global symbol: OBJECT TYPE NAME
for o in $objs; do
  (cd "$build" && nm -g -P "$o") | awk -v o="$o" 'NF >= 2 { print o, $2, $1 }'
done | awk -v nobj="$(echo "$objs" | wc -l)" '
  function name_list(key,   s) {
    s = syms[key]
    if (nsyms[key] > 3) s = s " and " nsyms[key] - 3 " more"
    return s
  }
  # simple cycles through start (the lowest-numbered object in them), nodes above start only
  function dfs(v, depth,   w, j) {
    path[depth] = v; on[v] = 1
    for (j = 1; j <= nout[v]; j++) {
      w = out[v, j]
      if (w == start && depth >= 3) {
        line = "  cycle:"
        for (k = 1; k <= depth; k++) line = line " " obj[path[k]] " ->"
        print line " " obj[start]; cycles++
      } else if (w > start && !on[w] && depth < 8) dfs(w, depth + 1)
    }
    on[v] = 0
  }
  {
    if (!($1 in id)) { id[$1] = ++n; obj[n] = $1 }
    if ($2 == "U") { nu++; uobj[nu] = $1; usym[nu] = $3 }
    else if ($2 ~ /^[TDBRGSC]$/ && !($3 in def)) def[$3] = $1
  }
  END {
    for (i = 1; i <= nu; i++) {
      if (!(usym[i] in def) || def[usym[i]] == uobj[i]) continue
      a = id[uobj[i]]; b = id[def[usym[i]]]
      if (!((a, b) in edge)) { edge[a, b] = 1; nout[a]++; out[a, nout[a]] = b; nedges++ }
      if (++nsyms[a, b] <= 3) syms[a, b] = (nsyms[a, b] > 1 ? syms[a, b] ", " : "") usym[i]
    }
    printf "check-cycles: %d objects, %d dependenc%s between them\n", nobj, nedges,
      (nedges == 1 ? "y" : "ies")
    for (a = 1; a <= n; a++)
      for (b = a + 1; b <= n; b++)
        if ((a, b) in edge && (b, a) in edge) {
          printf "  pair:  %s <-> %s\n", obj[a], obj[b]
          printf "         %s uses %s\n", obj[a], name_list(a SUBSEP b)
          printf "         %s uses %s\n", obj[b], name_list(b SUBSEP a)
          cycles++
        }
    for (start = 1; start <= n; start++) dfs(start, 1)
    if (cycles) {
      printf "check-cycles: %d cycle%s between objects\n", cycles, (cycles > 1 ? "s" : "")
      exit 1
    }
    print "  ok: no object depends on another that depends back on it"
  }' > "$tmp/report" && status=0 || status=$?
# C++ names (the CUDA plugin's) as they are written, without their parameter lists
if command -v c++filt > /dev/null; then c++filt -p < "$tmp/report"; else cat "$tmp/report"; fi
exit $status
