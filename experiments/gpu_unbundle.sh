#!/usr/bin/env bash
# On the GPU machine, in the last call (carrying the last part and .dev/extra): join the parts copied to /tmp/b,
# install the wheels into /tmp/site, de-quantise the Qwen base once, embed every text of the data once (so runs side by
# side do not write the embedding cache at once), and write /tmp/env.sh for the runs. Then, for instance:
#   . /tmp/env.sh; cd /tmp/repo; setsid nohup experiments/qwen_validation.sh /tmp/x/data /tmp/out base 0 > /tmp/out/base.log 2>&1 &
set -euo pipefail
LAST=$(ls .dev/parts/p?? | tail -1)
cat /tmp/b/p?? "$LAST" > /tmp/bundle.tar
mkdir -p /tmp/x && tar xf /tmp/bundle.tar -C /tmp/x && rm /tmp/bundle.tar /tmp/b/p??
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site /tmp/x/whl/*.whl .dev/extra/*.whl
rm -rf /tmp/repo && mkdir /tmp/repo && cp -r src recipes experiments /tmp/repo/
echo "export PYTHONPATH=/tmp/site:/tmp/repo/src PRICER_CACHE=/tmp/x/pc HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false" > /tmp/env.sh
. /tmp/env.sh && cd /tmp/repo && mkdir -p /tmp/out
python3 -c "from pricer.llm.models import resolve_base; print(resolve_base('qwen2.5-coder-1.5b'))"
# a CPU predictor fitted and saved at toy size: a missing wheel shows here, not after a run's last minute
python3 -m pricer.cli fit tfidf --train "/tmp/x/data/train.jsonl[:300]" --out /tmp/smoke-tfidf > /dev/null && rm -r /tmp/smoke-tfidf
python3 -c "
from pathlib import Path
from pricer.data.items import read_items
from pricer.retrieval.embeddings import embed
items = [it for f in sorted(Path('/tmp/x/data').glob('*.jsonl')) for it in read_items(str(f))]
print('embedded', embed([it.text for it in items]).shape)
if Path('/tmp/x/pc/embedders/all-mpnet-base-v2/modules.json').exists():
    print('embedded with mpnet', embed([it.text for it in items], 'all-mpnet-base-v2').shape)"
