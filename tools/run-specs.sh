#!/bin/sh
# Runs busted over the given spec paths, printing a line per spec file as
# it finishes (spec/support/progress.lua), and closes with a plain summary
# line ("N passed, N failed") that any CI reader understands.
set -u
out=$(mktemp)
here=$(dirname "$0")
lua5.4 /usr/bin/busted --output="$here/../spec/support/progress.lua" "$@" 2>&1 | tee "$out"
# busted's summary: "12 successes / 0 failures / 1 error / 0 pending : 0.5 seconds"
line=$(grep -E '[0-9]+ success' "$out" | tail -n 1)
rm -f "$out"
ok=$(echo "$line" | grep -oE '[0-9]+ success' | grep -oE '[0-9]+')
failed=$(echo "$line" | grep -oE '[0-9]+ failure' | grep -oE '[0-9]+')
errors=$(echo "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+')
pending=$(echo "$line" | grep -oE '[0-9]+ pending' | grep -oE '[0-9]+')
echo "${ok:-0} passed, $(( ${failed:-0} + ${errors:-0} )) failed, ${pending:-0} skipped"
[ -n "$line" ] || exit 1
[ "${failed:-0}" -eq 0 ] && [ "${errors:-0}" -eq 0 ] || exit 1
exit 0
