"""The rates a plan uses when this machine has no calibration: figures measured in
bench/README.md, each named there. A plan made from them says so in every basis line."""

from __future__ import annotations

from .calibration import Calibration, DebateRates, GpuRates, IndexRates, SynthesisRates

SOURCE = "bench/README.md defaults (2-core VM, one H100)"

#: bench/README.md, index_build.py, `all`: 16.94 MB/s of text (wall time, counted here as one
#: core's); size ratio measured by `litelong plan --calibrate` on the same VM (wiki sample).
INDEX = {
    "plain": IndexRates(text_bytes_per_cpu_s=16.9e6, disk_bytes_per_text_byte=0.55),
    "chunks": IndexRates(text_bytes_per_cpu_s=8.0e6, disk_bytes_per_text_byte=1.1),
}
#: bench/README.md, synthesis.py: build 827K-1.27M tokens/s, commit + report 3.6-5.6 s (wall
#: times, counted here as one core's).
SYNTHESIS = SynthesisRates(
    tokens_per_cpu_s=1.0e6, report_cpu_seconds=4.5, bytes_per_token=4.1, fixed_bytes=150_000
)
#: bench/README.md, debate.py at concurrency 4: 120.4 s for 6 subjects, 30 requests,
#: 16,415 tokens; the split by role is the quickstart's calibration on the same VM.
DEBATE = DebateRates(
    seconds_per_subject=20.1,
    requests_per_subject=5.0,
    tokens_in={"propose": 700.0, "critique": 900.0, "judge": 500.0},
    tokens_out={"propose": 300.0, "critique": 250.0, "judge": 85.0},
    topics_per_subject=4.7,
    bytes_per_subject=25_000.0,
)
#: bench/README.md, train.py: one H100 (MFU by length: training.BENCH_MFU).
GPU = GpuRates(name="H100 80GB HBM3", memory_gib=79.1, peak_tflops=989.4)
#: bench/README.md, embed_throughput.py: all-MiniLM-L6-v2 on one H100, fp32.
EMBED_CHUNKS_PER_GPU_S = 1460.9
#: SmolLM2's tokenizer on English text (the synthesis bench: ~4 bytes per token).
TOKENS_PER_BYTE = 0.25


def defaults() -> Calibration:
    return Calibration(
        host=SOURCE,
        tokens_per_byte=TOKENS_PER_BYTE,
        gpu=GPU,
    )
