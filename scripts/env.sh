# Sourced by the scripts: one cargo target directory outside the clone, reused across clones.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if [ -d /work ] && [ -w /work ]; then
    export CARGO_TARGET_DIR=/work/target
  else
    export CARGO_TARGET_DIR="$HOME/.cache/nestor-target"
  fi
fi
mkdir -p "$CARGO_TARGET_DIR"
