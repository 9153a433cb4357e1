#!/usr/bin/env bash
# The GPU side of bench/data_quality.py, as it ran on the lent H200 (bench/README.md has the
# calls). The machine is bare and offline and each call carries at most 64 MiB, so the GGUF
# travels in two parts over two calls; everything unpacks into $W, kept between calls.
#   setup CARRIED  : wheels, tokenizer, samples, code, GGUF part 1; eval samples made; a smoke run
#   arms CARRIED SEEDS... : GGUF part 2, dequantized once; each arm trained and evaluated per seed
#   more SEEDS...  : further seeds and the base, on what earlier calls left in $W
set -euo pipefail
step=$1
W=/tmp/dq
OUT=${OUT:-$W/out}
export PYTHONPATH=$W/code:/tmp/site:$W/code/bench/stubs  # stubs: tantivy, openai, zstandard, xllamacpp
run() { python3 $W/code/bench/data_quality.py "$@"; }
common=(--work $W --tokenizer $W/tokenizer.json --eval-lengths 4096 8192 16384 32768 --samples 10)
case $step in
  setup)
    carried=$2
    mkdir -p $W/code $W/results
    tar xf $carried/code.tar -C $W/code
    python3 -m pip install -q --no-index --no-deps --target /tmp/site $carried/wheels/*.whl
    xz -dc $carried/tokenizer.json.xz > $W/tokenizer.json
    tar xJf $carried/data.tar.xz -C $W
    cp $carried/gguf.part-aa $W/
    run run "${common[@]}" --out $W/results --model litelong/tiny --samples-only
    run run --work $W --tokenizer $W/tokenizer.json --out $OUT/smoke --model litelong/tiny \
      --arms standard --steps 3 --eval-lengths 32768 --samples 2 --perplexity-documents 2
    ;;
  arms)
    carried=$2; shift 2
    cat $W/gguf.part-aa $carried/gguf.part-ab $carried/gguf.part-ac > $W/smollm2.gguf
    (cd $W && echo "$(cat $carried/gguf.sha256)  smollm2.gguf" | sha256sum -c -)
    [ -d $W/smollm2-hf ] || run dequantize $W/smollm2.gguf --out $W/smollm2-hf
    timeout 540 python3 $W/code/bench/data_quality.py run "${common[@]}" --out $W/results \
      --model $W/smollm2-hf --seeds "$@" --budget 470 || echo "run ended: $?"
    cp $W/results/*.json $OUT/
    ;;
  more)
    shift 1
    timeout 570 python3 $W/code/bench/data_quality.py run "${common[@]}" --out $W/results \
      --model $W/smollm2-hf --seeds "$@" --base --budget 520 || echo "run ended: $?"
    cp $W/results/*.json $OUT/
    ;;
esac
