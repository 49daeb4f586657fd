#!/usr/bin/env bash
# Sets up and runs every test (one optimised profile: release).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
cargo test --release --workspace "$@"
