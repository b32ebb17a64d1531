#!/usr/bin/env bash
# Benchmark `gc-audit scan` on synthetic filesystem registries.
#
#   scripts/bench-fs.sh [KEYS ...]        (default: 25000 100000 250000)
#
# For each size: generates a deterministic tree (gen-registry, seed 1) into $BENCH_DIR
# (default /tmp/gc-audit-bench; trees are kept and reused), drops nothing from the page cache
# (run it twice to compare warm runs), then times one scan with /usr/bin/time and prints
# keys, blobs, manifests, wall/user/sys seconds, peak RSS and RSS bytes per key.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(25000 100000 250000)
dir=${BENCH_DIR:-/tmp/gc-audit-bench}
mkdir -p "$dir"
command -v /usr/bin/time >/dev/null || { echo "bench-fs.sh: needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }
cargo build -q --release -p gc-cli -p gc-testkit --bin gc-audit --bin gen-registry
printf '%-9s %-9s %-9s %-10s %8s %8s %8s %10s %9s\n' target keys blobs manifests wall_s user_s sys_s rss_kb B/key
for n in "${sizes[@]}"; do
  tree="$dir/tree-$n"
  if [ ! -f "$tree.stats" ]; then
    rm -rf "$tree"
    ./target/release/gen-registry --keys "$n" --out "$tree" > "$tree.stats"
  fi
  keys=$(sed -E 's/.*: ([0-9]+) keys.*/\1/' "$tree.stats")
  blobs=$(sed -E 's/.* ([0-9]+) blobs.*/\1/' "$tree.stats")
  manifests=$(sed -E 's/.* ([0-9]+) manifests.*/\1/' "$tree.stats")
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time-$n" ./target/release/gc-audit scan "$tree" --out "$dir/report-$n" -q > /dev/null || [ $? -le 1 ]
  read -r wall user sys rss < "$dir/time-$n"
  printf '%-9s %-9s %-9s %-10s %8s %8s %8s %10s %9s\n' "$n" "$keys" "$blobs" "$manifests" "$wall" "$user" "$sys" "$rss" "$((rss * 1024 / keys))"
done
