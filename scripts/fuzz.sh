#!/usr/bin/env bash
# Runs every fuzz target for a while, seeded from the shipped policies and
# the case corpus. Usage: scripts/fuzz.sh [seconds per target, default 180]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-180}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in parse fmt_roundtrip decide; do mkdir -p "fuzz/corpus/$t"; done
cp policies/*.warden fuzz/corpus/parse/
cp policies/*.warden fuzz/corpus/fmt_roundtrip/
cp examples/*.json fuzz/corpus/decide/
for t in parse fmt_roundtrip decide; do
  echo "== fuzz $t for ${secs}s"
  # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets this stable toolchain accept them.
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$secs" -max_len=4096 2>&1 | tail -n 4
done
