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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends bochs bochs-term bochsbios vgabios bsdutils
fi
cargo build --release -p nestor-cli
nestor="$CARGO_TARGET_DIR/release/nestor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "nestor:"
"$nestor" bench --repeat 3
for name in bench-int bench-string; do
  "$nestor" rom "$name" --out "$work/$name.rom"
  insns=$("$nestor" bench "${name#bench-}" --repeat 1 | awk '{print $2}')
  # Debian's Bochs has no "nogui" display and starts in its debugger: run the "term"
  # display under a pseudo-terminal (script) and tell the debugger to continue.
  cat > "$work/$name.bxrc" <<CFG
romimage: file=$work/$name.rom
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
megs: 32
display_library: term
com1: enabled=1, mode=file, dev=$work/$name.serial
log: $work/$name.log
panic: action=fatal
error: action=report
info: action=report
clock: sync=none
CFG
  echo c > "$work/cmds"
  t0=$(date +%s.%N)
  script -qc "bochs -q -f $work/$name.bxrc -rc $work/cmds" /dev/null >/dev/null 2>&1 </dev/null || true
  t1=$(date +%s.%N)
  grep -q "Shutdown port: shutdown requested" "$work/$name.log" \
    || { echo "bochs did not reach the shutdown port for $name" >&2; exit 1; }
  awk -v n="$insns" -v a="$t0" -v b="$t1" -v name="$name" \
    'BEGIN { printf "bochs  %-13s %12d instructions %8.3f s %8.1f MIPS\n", name, n, b - a, n / (b - a) / 1e6 }'
done
