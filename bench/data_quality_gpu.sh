#!/usr/bin/env bash
# The GPU side of bench/data_quality.py, as it ran on the lent H200 (bench/README.md has the
# calls). The machine is bare and offline and each call carries at most 64 MiB, so the GGUF
# (98 MB) travels in two parts over two calls; everything unpacks into $W, which the machine
# keeps between calls while it stays warm.
#   setup CARRIED          : wheels, tokenizer, samples, code, GGUF part 1; eval samples made
#   arms CARRIED SEEDS...  : GGUF parts 2 and 3; each arm trained and evaluated per seed
#   more SEEDS... [--base] : further seeds (and the base) on what earlier calls left in $W
set -euo pipefail
step=$1
W=${W:-/tmp/dq}
OUT=${OUT:-$W/out}
# stubs: tantivy, openai, zstandard, xllamacpp (imported on these paths, never called)
export PYTHONPATH=$W/code:/tmp/site:$W/code/bench/stubs
common=(--work $W --tokenizer $W/tokenizer.json --eval-lengths 4096 8192 16384 32768
  --samples 10 --out $W/results --model $W/smollm2.gguf)
bench() { timeout "$1" python3 $W/code/bench/data_quality.py "${@:2}" || echo "ended: $?"; }
case $step in
  setup)
    carried=$2
    mkdir -p $W/code $W/results
    tar xf $carried/code.tar -C $W/code
    python3 -m pip install -q --no-index --no-deps --target /tmp/site $carried/wheels/*.whl
    python3 - "$carried" "$W" <<'PY'
import lzma, sys, tarfile
carried, work = sys.argv[1:]
open(f"{work}/tokenizer.json", "wb").write(lzma.open(f"{carried}/tokenizer.json.xz").read())
tarfile.open(f"{carried}/data.tar.xz").extractall(work)
PY
    cp $carried/gguf.part-aa $W/
    bench 300 run "${common[@]}" --samples-only
    ;;
  arms)
    carried=$2; shift 2
    cat $W/gguf.part-aa $carried/gguf.part-ab $carried/gguf.part-ac > $W/smollm2.gguf
    (cd $W && echo "$(cat $carried/gguf.sha256)  smollm2.gguf" | sha256sum -c -)
    bench 560 run "${common[@]}" --seeds "$@" --budget 480
    cp $W/results/*.json $OUT/
    ;;
  more)
    shift 1
    bench 575 run "${common[@]}" --seeds "$@" --budget 545
    cp $W/results/*.json $OUT/
    ;;
esac
