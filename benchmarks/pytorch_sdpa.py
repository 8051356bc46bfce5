#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the decode shapes of bench_cuda_attention.

Times one decode step (one query token per sequence) with torch SDPA over an
fp16 KV cache, 32 query heads, head_dim 128, 8 and 32 KV heads, contexts
1K..128K, batch 1..64 (batch x context <= 2M tokens), and reports the KV bytes
read per second and that as a fraction of torch's own device-to-device copy
bandwidth. Given the JSON of bench_cuda_attention, it prints our fastest
variant beside it. Not run by CI (needs a GPU and PyTorch).

  build/bin/bench_cuda_attention --benchmark_out=decode.json
  python3 benchmarks/pytorch_sdpa.py --kvc-json decode.json

GQA without copies: the G = 32 / n_kv_heads query heads of a group become G
query rows of one KV head ([batch, n_kv_heads, G, 128] against
[batch, n_kv_heads, context, 128]); with no mask this is exactly grouped decode
attention, and SDPA reads each KV head once.

Two cache layouts are timed: "same", the course's [batch][context][n_kv_heads][128]
(passed to SDPA as a transposed view, no copy), which reads the same bytes in
the same order as bench_cuda_attention; and "head-major", PyTorch's preferred
contiguous [batch][n_kv_heads][context][128].
"""
import argparse
import json
import re

import torch
import torch.nn.functional as F

HEADS = 32
HEAD_DIM = 128
MAX_TOKENS = 2 << 20
CONTEXTS = [1024, 4096, 16384, 32768, 65536, 131072]
BATCHES = [1, 4, 16, 64]
KV_HEADS = [8, 32]


def time_ms(fn, iters):
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    fn()  # warm up
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def copy_bandwidth_gbps():
    """Device-to-device copy, bytes read + written per second (as the C++ benchmark)."""
    src = torch.ones(1 << 29, dtype=torch.float16, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), 20)
    return 2 * src.numel() * src.element_size() / (ms * 1e-3) / 1e9


def sdpa_decode_ms(batch, n_kv_heads, context, same_layout):
    group = HEADS // n_kv_heads
    q = torch.randn(batch, n_kv_heads, group, HEAD_DIM, dtype=torch.float16, device="cuda")
    if same_layout:  # [batch][context][n_kv_heads][head_dim] seen as [batch][n_kv_heads][context][head_dim]
        k = torch.ones(batch, context, n_kv_heads, HEAD_DIM, dtype=torch.float16, device="cuda").transpose(1, 2)
    else:
        k = torch.ones(batch, n_kv_heads, context, HEAD_DIM, dtype=torch.float16, device="cuda")
    v = torch.ones_like(k)  # same strides as k
    bytes_read = 2 * k.numel() * k.element_size()
    iters = max(3, min(200, int(2e10 / bytes_read)))
    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), iters)
    del q, k, v
    torch.cuda.empty_cache()
    return ms, bytes_read


def load_kvc(path):
    """{(kv_heads, batch, context): (best variant name, microseconds)} from the benchmark JSON."""
    best = {}
    with open(path) as f:
        for run in json.load(f)["benchmarks"]:
            match = re.match(r"decode/(v\d)/kv_heads:(\d+)/batch:(\d+)/context:(\d+)", run["name"])
            if not match or run.get("run_type") == "aggregate":
                continue
            key = tuple(int(x) for x in match.groups()[1:])
            time_us = run["real_time"] * {"us": 1, "ms": 1e3, "ns": 1e-3, "s": 1e6}[run["time_unit"]]
            if key not in best or time_us < best[key][1]:
                best[key] = (match.group(1), time_us)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kvc-json", help="bench_cuda_attention --benchmark_out file to compare with")
    args = parser.parse_args()
    kvc = load_kvc(args.kvc_json) if args.kvc_json else {}

    copy_gbps = copy_bandwidth_gbps()
    print(f"{torch.cuda.get_device_name()}: torch {torch.__version__}, device-to-device copy {copy_gbps:.0f} GB/s")
    header = f"{'kv_heads':>8} {'batch':>5} {'context':>7} | {'same us':>9} {'of_copy':>7} | {'head-major us':>13} {'of_copy':>7}"
    if kvc:
        header += f" | {'kvc':>3} {'us':>9} {'of_copy':>7} {'same/kvc':>8}"
    print(header)
    for n_kv_heads in KV_HEADS:
        for batch in BATCHES:
            for context in CONTEXTS:
                if batch * context > MAX_TOKENS:
                    continue
                same_ms, bytes_read = sdpa_decode_ms(batch, n_kv_heads, context, same_layout=True)
                head_major_ms, _ = sdpa_decode_ms(batch, n_kv_heads, context, same_layout=False)

                def of_copy(ms):
                    return bytes_read / (ms * 1e-3) / 1e9 / copy_gbps

                line = (f"{n_kv_heads:>8} {batch:>5} {context:>7} | {same_ms * 1e3:>9.1f} {of_copy(same_ms):>7.2f}"
                        f" | {head_major_ms * 1e3:>13.1f} {of_copy(head_major_ms):>7.2f}")
                if (n_kv_heads, batch, context) in kvc:
                    variant, us = kvc[(n_kv_heads, batch, context)]
                    line += f" | {variant:>3} {us:>9.1f} {of_copy(us * 1e-3):>7.2f} {same_ms * 1e3 / us:>8.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
