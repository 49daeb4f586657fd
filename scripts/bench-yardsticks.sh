#!/usr/bin/env bash
# Runs the benchmark ROMs under Nestor, Bochs 2.7 and QEMU 7.2's TCG (Debian's packages) and
# prints MIPS side by side. All three execute the identical 64 KiB image: it powers off
# through Bochs' port 0x8900 (Nestor and Bochs) or QEMU's isa-debug-exit at 0xF4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
if ! command -v bochs >/dev/null 2>&1 || ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    bochs bochs-term bochsbios vgabios bsdutils qemu-system-x86 bc
fi
cargo build --release -p nestor-cli
nestor="$CARGO_TARGET_DIR/release/nestor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

report() { # engine name instructions t0 t1
  awk -v e="$1" -v name="$2" -v n="$3" -v a="$4" -v b="$5" \
    'BEGIN { printf "%-7s %-13s %12d instructions %8.3f s %8.1f MIPS\n", e, name, n, b - a, n / (b - a) / 1e6 }'
}

run_bochs() { # name rom instructions
  # Debian's Bochs has no "nogui" display and starts in its debugger: run the "term"
  # display under a pseudo-terminal (script) and tell the debugger to continue.
  cat > "$work/$1.bxrc" <<CFG
romimage: file=$2
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
megs: 32
display_library: term
com1: enabled=1, mode=file, dev=$work/$1.bochs.serial
log: $work/$1.log
panic: action=fatal
error: action=report
info: action=report
clock: sync=none
CFG
  echo c > "$work/cmds"
  local t0 t1
  t0=$(date +%s.%N)
  script -qc "bochs -q -f $work/$1.bxrc -rc $work/cmds" /dev/null >/dev/null 2>&1 </dev/null || true
  t1=$(date +%s.%N)
  grep -q "Shutdown port: shutdown requested" "$work/$1.log" \
    || { echo "bochs did not reach the shutdown port for $1" >&2; exit 1; }
  report bochs "$1" "$3" "$t0" "$t1"
}

run_qemu() { # name rom instructions
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  # isa-debug-exit turns the ROM's exit value v into status 2v+1; the ROMs write 1 there
  # only after the Bochs port did nothing.
  timeout 600 qemu-system-x86_64 -accel tcg -nodefaults -display none -m 32 -bios "$2" \
    -serial "file:$work/$1.qemu.serial" -device isa-debug-exit,iobase=0xf4,iosize=1 || rc=$?
  t1=$(date +%s.%N)
  grep -q "done" "$work/$1.qemu.serial" && [ "$rc" = 3 ] \
    || { echo "qemu did not finish $1 (status $rc)" >&2; exit 1; }
  report qemu "$1" "$3" "$t0" "$t1"
}

echo "nestor:"
"$nestor" bench --repeat 3
for name in bench-int bench-string bench-int64 bench-sse64; do
  "$nestor" rom "$name" --out "$work/$name.rom"
  insns=$("$nestor" bench "${name#bench-}" --repeat 1 | awk '{print $2}')
  run_bochs "$name" "$work/$name.rom" "$insns"
  run_qemu "$name" "$work/$name.rom" "$insns"
done
