#!/usr/bin/env bash
# The CPU against its memory roof (issue 11), in one go: the commands the
# lessons' and benchmarks/README.md's decode-attention and matmul tables come
# from, printed as fractions of the read bandwidth each program measured at
# start-up: of_read_bw against the probe on 4 KiB pages, of_huge_read_bw
# against the probe on 2 MiB pages, which is what the KV caches and the
# weights are on (so the one decode attention and GEMV are held to);
# of_fma_peak for batched GEMM. Run it on a quiet machine: every number moves
# with other jobs on the cores.
#
#   scripts/measure-roof.sh [BUILD_DIR]          (default: build)
#
# Environment:
#   REPEATS=N      run each benchmark N times and print the medians (default 1)
#   LLAMA2C_DIR=D  also time chapter 02 against llama2.c's runomp on the 15M
#                  shape, 2 threads, PAIRS alternated pairs (default 4); D holds
#                  `runomp`, llama2.c's run.c built as its Makefile does:
#                  gcc -Ofast -fopenmp -march=native -o D/runomp run.c -lm
#   KEEP=DIR       keep the benchmarks' JSON in DIR (default: a temp dir, removed)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bin=$build/bin
repeats=${REPEATS:-1}
pairs=${PAIRS:-4}
for program in bench_cpu_kernels ch03_bench_gqa ch04_bench_paged; do
  [[ -x $bin/$program ]] || { echo "error: $bin/$program not built (build with KVC_BENCHMARKS=ON)" >&2; exit 1; }
done
if [[ -n ${KEEP:-} ]]; then
  out=$KEEP
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

contexts='(4096|8192|16384|32768)'
bench() {  # bench NAME PROGRAM FILTER: one program's rows as JSON in $out/NAME.json
  echo "running $2 --benchmark_filter='$3' (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  "$bin/$2" --benchmark_filter="$3" --benchmark_repetitions="$repeats" \
    --benchmark_out_format=json --benchmark_out="$out/$1.json" >"$out/$1.log" 2>&1 ||
    { cat "$out/$1.log" >&2; exit 1; }
}
bench kernels bench_cpu_kernels "AttentionDecode/variant:[45]/n_ctx:$contexts/|Matmul/"
bench gqa ch03_bench_gqa "Split/kv_heads:8/context:$contexts/"
bench paged ch04_bench_paged "v[34]/block:16/context:$contexts/"

python3 - "$out" <<'EOF'
import json, re, statistics, sys

out = sys.argv[1]
contexts = [4096, 8192, 16384, 32768]

def rows(name):
    """Benchmark runs as (fields, counters): fields from the name's key:value parts."""
    with open(f"{out}/{name}.json") as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        parts = b["run_name"].split("/")
        fields = {"name": parts[0], "case": parts[1] if ":" not in parts[1] else ""}
        fields.update(p.split(":", 1) for p in parts[1:] if ":" in p)
        runs.setdefault(tuple(sorted(fields.items())), []).append(b)
    result = []
    for key, group in runs.items():  # the median of each counter over the repetitions
        counters = {c: statistics.median(b[c] for b in group)
                    for c in group[0] if isinstance(group[0][c], (int, float))}
        result.append((dict(key), counters))
    return data["context"], result

def pick(runs, counter, **want):
    for fields, counters in runs:
        if all(fields.get(k) == str(v) for k, v in want.items()):
            return counters.get(counter)
    return None

def fmt(x):
    return "  -  " if x is None else f"{x:5.2f}"

programs = {"kernels": "bench_cpu_kernels", "gqa": "ch03_bench_gqa", "paged": "ch04_bench_paged"}
loaded = {name: rows(name) for name in programs}
print("\nprogram             read GB/s, 1 / 2 threads, on      FMA GFLOP/s   load (1, 5, 15 min)")
print("                    4 KiB pages    2 MiB pages        1 / 2")
for name, program in programs.items():
    ctx = loaded[name][0]
    load = ", ".join(f"{x:.2f}" for x in ctx.get("load_avg", []))
    probe = lambda key: "/".join(f"{float(ctx[f'{key}_{t}_threads']):5.1f}" for t in (1, 2))
    print(f"{program:20}{probe('read_GB/s'):15}{probe('huge_read_GB/s'):19}"
          f"{probe('fma_GFLOP/s'):14}{load}")

attention = [
    ("contiguous v4 fast exact", "kernels", dict(name="BM_AttentionDecode", variant=4), "n_ctx"),
    ("contiguous v5 split", "kernels", dict(name="BM_AttentionDecode", variant=5), "n_ctx"),
    ("paged v3 fast exact, block 16", "paged", dict(case="v3", block=16), "context"),
    ("paged v4 split, block 16", "paged", dict(case="v4", block=16), "context"),
    ("grouped split (ch03, GQA-8)", "gqa", dict(case="Split", kv_heads=8), "context"),
]
def attention_table(counter, title, rows):
    print(f"\ndecode attention, {title}")
    print(f"{'':32}{'1 thread: 4K    8K   16K   32K':32}2 threads: 4K    8K   16K   32K")
    for label, name, want, context_key in rows:
        cells = [fmt(pick(loaded[name][1], counter, threads=t, **{context_key: c}, **want))
                 for t in (1, 2) for c in contexts]
        print(f"{label:32}         {' '.join(cells[:4])}            {' '.join(cells[4:])}")
shape = "32 query heads, 8 KV heads, head_dim 128, fp32 cache on 2 MiB pages"
attention_table("of_huge_read_bw", f"of_huge_read_bw ({shape})", attention)
attention_table("of_read_bw", "of_read_bw (the same runs against the 4 KiB-page probe)", attention)
attention_table("x_contiguous", "paged time / contiguous time (x_contiguous, same run)",
                [(label, name, want, key) for label, name, want, key in attention if name == "paged"])

print("\nmatmul (bench_cpu_kernels)            1 thread   2 threads")
for n, counter in (("1", "of_huge_read_bw"), ("64", "of_fma_peak")):
    for fields, _ in sorted(loaded["kernels"][1], key=lambda r: (int(r[0].get("d_out", 0)), r[0].get("d_in", ""))):
        if fields["name"] != "BM_Matmul" or fields.get("n") != n or fields.get("threads") != "1":
            continue
        shape = dict(name="BM_Matmul", n=n, d_out=fields["d_out"], d_in=fields["d_in"])
        cells = [fmt(pick(loaded["kernels"][1], counter, threads=t, **shape)) for t in (1, 2)]
        label = f"{'GEMV' if n == '1' else 'GEMM n=64'} {fields['d_out']}x{fields['d_in']} {counter}"
        print(f"{label:38}{cells[0]:>8}   {cells[1]:>8}")
EOF

[[ -n ${LLAMA2C_DIR:-} ]] || exit 0
# Chapter 02 against llama2.c's runomp, 2 threads, the same checkpoint and
# prompt; the runs alternate so both see the same machine.
runomp=$LLAMA2C_DIR/runomp
[[ -x $runomp ]] || { echo "error: $runomp not found (build it with llama2.c's build.sh)" >&2; exit 1; }
model=$out/15m.bin
"$bin/kvc_make_model" --preset 15m --out "$model" >/dev/null
args=(-z "$root/models/tokenizer.bin" -t 0 -n 256 -i "Once upon a time")
# Both print the text on stdout and "achieved tok/s: X" on stderr.
tok_per_s() { grep -o 'achieved tok/s: [0-9.]*' "$1" | cut -d' ' -f3; }
echo
echo "chapter 02 --kernel fast vs llama2.c runomp, 15M shape, 2 threads, $pairs pairs"
echo "pair  runomp tok/s  ch02 tok/s  ch02/runomp  same text  load"
for ((i = 1; i <= pairs; ++i)); do
  OMP_NUM_THREADS=2 "$runomp" "$model" "${args[@]}" >"$out/runomp.txt" 2>"$out/runomp.err"
  "$bin/ch02_contiguous_kv_cache" "$model" "${args[@]}" --threads 2 --kernel fast \
    >"$out/ch02.txt" 2>"$out/ch02.err"
  r=$(tok_per_s "$out/runomp.err")
  c=$(tok_per_s "$out/ch02.err")
  same=no
  cmp -s "$out/runomp.txt" "$out/ch02.txt" && same=yes
  printf '%4d  %12.1f  %10.1f  %11.2f  %9s  %s\n' "$i" "$r" "$c" "$(awk -v c="$c" -v r="$r" 'BEGIN { print c / r }')" "$same" \
    "$(cut -d' ' -f1 /proc/loadavg)"
done
