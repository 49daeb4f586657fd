#!/usr/bin/env bash
# Runs the benchmark ROMs under Nestor and under Bochs 2.7 (Debian's package) and prints MIPS
# side by side. Both execute the identical 64 KiB image, which powers off through port 0x8900.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
if ! command -v bochs >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends bochs bochs-term bochsbios vgabios
fi
cargo build --release -p nestor-cli
nestor="$CARGO_TARGET_DIR/release/nestor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$nestor" bench --repeat 3
for name in bench-int bench-string; do
  "$nestor" rom "$name" --out "$work/$name.rom"
  insns=$("$nestor" bench "${name#bench-}" --repeat 1 | awk '{print $2}')
  cat > "$work/$name.bxrc" <<CFG
romimage: file=$work/$name.rom
megs: 16
display_library: nogui
cpu: count=1, ips=100000000, reset_on_triple_fault=0
clock: sync=none
log: $work/$name.log
panic: action=fatal
error: action=report
info: action=ignore
CFG
  t0=$(date +%s.%N)
  bochs -q -f "$work/$name.bxrc" >/dev/null 2>&1 </dev/null || true
  t1=$(date +%s.%N)
  grep -q "Shutdown" "$work/$name.log" || echo "warning: bochs did not reach the shutdown port for $name" >&2
  awk -v n="$insns" -v a="$t0" -v b="$t1" -v name="$name" \
    'BEGIN { printf "bochs %-13s %12d instructions %8.3f s %8.1f MIPS\n", name, n, b - a, n / (b - a) / 1e6 }'
done
