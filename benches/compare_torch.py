#!/usr/bin/env python3
"""Times `saliency bench` and PyTorch's bench-peers/bench_torch.py alternately, workload by
workload, and prints a markdown table of medians and their ratio (ours / PyTorch).

usage: python3 benches/compare_torch.py [--passes P] [--threads T] [--only SUBSTRING] [--simd TIER]
  env: SALIENCY (default target/release/saliency), PY (default /tmp/peers/bin/python),
       PEERS (default ../shared/bench-peers), OUT (JSON lines of every run, default /tmp/compare.jsonl)

Each pass runs every workload once with ours then once with PyTorch, so slow drift from other
load on the machine hits both about equally. A run's figure is its median over rounds; the table
gives, per workload, the median over passes of those figures and the ratio of the two medians.
Peak RSS comes from `/usr/bin/time -f %M` around each process.

`--simd avx2` (or avx512, portable) forces our SIMD tier and PyTorch's kernels alike
(`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA` for its convolutions, `MKL_ENABLE_INSTRUCTIONS` for
its GEMMs), so an AVX-512 machine measures what an AVX2-only one would run. `matrixmultiply` (our
large GEMMs) picks its kernels from the CPU unless capped when it is compiled (`saliency bench`
names them when they differ from the tier): for a forced-AVX2
table on an AVX-512 machine, build ours with
`MMTEST_FEATURE=fma,avx2,avx cargo build --release --target-dir target/avx2-gemm` and pass
`SALIENCY=target/avx2-gemm/release/saliency`.
The targets are those for an AVX2 machine (issue 17): the AVX-512 tier keeps at least these.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

# (label, our model, our workload, batch, torch model, torch task, torch record name, target ratio)
WORKLOADS = [
    ("deep train-step", "deep", "train-step", 16, "deepA", "train", "train_step", 7.0),
    ("deep train-step", "deep", "train-step", 128, "deepA", "train", "train_step", 4.5),
    ("deep infer", "deep", "infer", 1000, "deepA", "infer", "infer", 5.0),
    ("deep gradient-x-input", "deep", "gradient-x-input", 256, "deepA", "gxi", "gxi", 3.0),
    ("deep fgsm", "deep", "fgsm", 256, "deepA", "fgsm", "fgsm", 3.0),
    ("deep integrated-gradients (50 steps)", "deep", "integrated-gradients", 1, "deepA", "ig", "ig50_batched", 3.0),
    ("alexnet train-step", "alexnet", "train-step", 16, "alexnet", "train", "train_step", 2.3),
    ("alexnet train-step", "alexnet", "train-step", 128, "alexnet", "train", "train_step", 2.0),
    ("alexnet infer", "alexnet", "infer", 1000, "alexnet", "infer", "infer", 2.0),
]


def timed(cmd, cwd=None, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout lines, peak RSS MiB)."""
    full = ["/usr/bin/time", "-f", "MAXRSS_KB %M"] + cmd
    p = subprocess.run(full, cwd=cwd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    rss = None
    for line in p.stderr.splitlines():
        if line.startswith("MAXRSS_KB"):
            rss = int(line.split()[1]) / 1024
    return p.stdout.splitlines(), rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--simd", default="", help="portable, avx2 or avx512 (default: each picks its best)")
    a = ap.parse_args()
    simd = ["--simd", a.simd] if a.simd else []
    torch_env = dict(os.environ)
    if a.simd:
        torch_env["ATEN_CPU_CAPABILITY"] = {"portable": "default"}.get(a.simd, a.simd)
        torch_env["ONEDNN_MAX_CPU_ISA"] = {"portable": "SSE41", "avx2": "AVX2", "avx512": "AVX512_CORE"}[a.simd]
        # MKL does PyTorch's dense GEMMs, outside oneDNN's cap.
        torch_env["MKL_ENABLE_INSTRUCTIONS"] = {"portable": "SSE4_2", "avx2": "AVX2", "avx512": "AVX512"}[a.simd]
    ours_bin = os.environ.get("SALIENCY", "target/release/saliency")
    py = os.environ.get("PY", "/tmp/peers/bin/python")
    peers = os.environ.get("PEERS", "../shared/bench-peers")
    out = open(os.environ.get("OUT", "/tmp/compare.jsonl"), "a")
    todo = [w for w in WORKLOADS if a.only in f"{w[0]} {w[3]}"]
    results = {i: {"ours": [], "torch": [], "ours_rss": [], "torch_rss": []} for i in range(len(todo))}
    for p in range(a.passes):
        for i, (label, model, workload, batch, tmodel, ttask, trec, _) in enumerate(todo):
            lines, rss = timed([ours_bin, "bench", "--workload", workload, "--model", model,
                                "--batch-size", str(batch), "--threads", str(a.threads),
                                "--rounds", "5", "--json"] + simd)
            rec = json.loads(lines[-1])
            results[i]["ours"].append(rec["images_per_second"])
            results[i]["ours_rss"].append(rss)
            out.write(json.dumps({"pass": p, "impl": "saliency", "rss_mib": rss, **rec}) + "\n")
            tbatch = 1 if ttask == "ig" else batch
            lines, rss = timed([py, "bench_torch.py", tmodel, ttask, "--batch", str(tbatch),
                                "--threads", str(a.threads), "--blocks", "5", "--warmup", "3"], cwd=peers,
                              env=torch_env)
            for line in lines:
                rec = json.loads(line)
                if rec["task"] == trec:
                    results[i]["torch"].append(rec["imgs_per_s_median"])
                    results[i]["torch_rss"].append(rss)
                    out.write(json.dumps({"pass": p, "impl": "torch", "rss_mib": rss, **rec}) + "\n")
            r = results[i]
            print(f"pass {p}: {label} b{batch}: ours {r['ours'][-1]:.1f}, torch {r['torch'][-1]:.1f} img/s",
                  file=sys.stderr, flush=True)
    print("| workload | batch | ours img/s (median; min-max over passes) | PyTorch img/s | ratio | per-pass ratios | target | met | peak RSS ours / PyTorch MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (label, model, workload, batch, tmodel, ttask, trec, target) in enumerate(todo):
        r = results[i]
        o, t = statistics.median(r["ours"]), statistics.median(r["torch"])
        ratio = o / t
        # Each pass runs ours and PyTorch back to back: the spread of their ratios shows how
        # much the machine moved during the run.
        passes = [a / b for a, b in zip(r["ours"], r["torch"])]
        print(f"| {label} | {batch} | {o:,.0f} ({min(r['ours']):,.0f}-{max(r['ours']):,.0f}) | "
              f"{t:,.0f} ({min(r['torch']):,.0f}-{max(r['torch']):,.0f}) | {ratio:.2f}x | "
              f"{min(passes):.2f}-{max(passes):.2f}x | >= {target}x | "
              f"{'yes' if ratio >= target else 'no'} | {max(r['ours_rss']):.0f} / {max(r['torch_rss']):.0f} |")


if __name__ == "__main__":
    main()
