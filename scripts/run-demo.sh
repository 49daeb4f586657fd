#!/usr/bin/env bash
# Sets up, builds, and boots the built-in default guest (the demo ROM) headless.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
cargo build --release -p nestor-cli
"$CARGO_TARGET_DIR/release/nestor" run "$@"
