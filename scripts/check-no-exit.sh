#!/bin/sh
# check-no-exit.sh — library code never ends the process: fails when any of the given objects
# (the library's and the CUDA plugin's; `make test` passes them) references exit, _exit, _Exit,
# abort or quick_exit, naming the object and the symbol. Only the CLI (build/cli/) may exit.
# Usage: scripts/check-no-exit.sh OBJECT...
status=0
for obj in "$@"; do
  if [ ! -f "$obj" ]; then
    echo "check-no-exit: $obj: no such object" >&2
    status=1
    continue
  fi
  bad=$(nm -u "$obj" | awk '{ s = $NF; sub(/@.*/, "", s) }
    s ~ /^(exit|_exit|_Exit|abort|quick_exit)$/ { print s }')
  for sym in $bad; do
    echo "check-no-exit: $obj references $sym (library code must leave a sticky error or return a status)" >&2
    status=1
  done
done
[ $status = 0 ] && echo "check-no-exit: $# objects, none references exit, _exit, _Exit, abort or quick_exit"
exit $status
