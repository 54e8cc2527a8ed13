#!/usr/bin/env bash
# run_fuzz.sh FUZZER KILN_COMPILE SEED_MODELS_DIR CORPUS_DIR: compiles every seed model to a
# .kiln artifact, then runs the fuzzer on that corpus for KILN_FUZZ_SECONDS (default 60) seconds.
# Exit status: the fuzzer's (non-zero on any crash, leak or sanitizer report).
set -euo pipefail
fuzzer=$1 compile=$2 seeds=$3 corpus=$4
rm -rf "$corpus" && mkdir -p "$corpus"
for model in "$seeds"/*.kir; do
  "$compile" "$model" -o "$corpus/$(basename "$model" .kir).kiln" 2>/dev/null
done
echo "seed corpus: $(ls "$corpus" | wc -l) artifacts"
exec "$fuzzer" -max_total_time="${KILN_FUZZ_SECONDS:-60}" -rss_limit_mb=4096 -timeout=10 \
  -max_len=65536 -print_final_stats=1 "$corpus"
