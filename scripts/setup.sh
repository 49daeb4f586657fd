#!/usr/bin/env bash
# Installs what building and testing Nestor needs on Debian 12 (run as root, or with sudo).
set -euo pipefail
# libsdl2-dev: the SDL window; xvfb, xdotool, x11-apps (xwd): its test on a virtual display.
# libasound2-dev: cpal's ALSA backend (sound); libudev-dev: gilrs (gamepads).
packages=(build-essential pkg-config ca-certificates gdb libsdl2-dev xvfb xdotool x11-apps libasound2-dev libudev-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found. Install a Rust toolchain (1.85 or newer), e.g. with rustup." >&2
  exit 1
fi
