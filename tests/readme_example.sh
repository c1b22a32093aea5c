#!/usr/bin/env bash
# Runs the README's embedding example (built by meson from the README) in a scratch folder
# and checks what it prints: a row per word and the counters.
set -euo pipefail
exe=$1
dir=$(mktemp -d /tmp/sluice-readme-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
out=$("$exe")
echo "$out"
for want in "batch 1: to 2" "batch 1: be 2" "batch 1: or 1" "batch 1: not 1" \
    "6 records, 4 rows"; do
    grep -qF "$want" <<<"$out" || { echo "readme example: no \"$want\" in its output" >&2; exit 1; }
done
again=$("$exe")
grep -qF "0 records, 0 rows" <<<"$again" ||
    { echo "readme example: a second run read the file again: $again" >&2; exit 1; }
