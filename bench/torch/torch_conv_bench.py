#!/usr/bin/env python3
"""PyTorch CPU timings for the Swift bench (`bench conv|gemm`), measured in the same run.

Reads a JSON job on stdin:
  {"threads": N, "repeat": R,
   "conv": [{"cin":..,"cout":..,"k":..,"stride":..,"pad":..,"h":..,"w":..}, ...],
   "gemm": [{"m":..,"n":..,"k":..}, ...]}
Writes JSON on stdout: {"torch": version, "threads": N,
   "conv": [{"forward": s, "input_grad": s}, ...], "gemm": [s, ...]}
Times are the median (job "stat": "min": the minimum) of R runs (seconds) after one warm-up,
batch 1, float32, no autograd.
"""
import json
import statistics
import sys
import time

import torch


STAT = "median"


def median_time(fn, repeat):
    fn()  # warm-up (allocations, oneDNN primitive creation)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts) if STAT == "min" else statistics.median(ts)


def main():
    global STAT
    job = json.load(sys.stdin)
    STAT = job.get("stat", "median")
    torch.set_num_threads(int(job["threads"]))
    repeat = int(job.get("repeat", 5))
    g = torch.Generator().manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "conv": [], "gemm": []}
    with torch.no_grad():
        for c in job.get("conv", []):
            x = torch.rand(1, c["cin"], c["h"], c["w"], generator=g)
            w = torch.rand(c["cout"], c["cin"], c["k"], c["k"], generator=g)
            y = torch.nn.functional.conv2d(x, w, None, c["stride"], c["pad"])
            dy = torch.rand(y.shape, generator=g)
            fwd = median_time(lambda: torch.nn.functional.conv2d(x, w, None, c["stride"], c["pad"]), repeat)
            dx = median_time(lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, c["stride"], c["pad"]), repeat)
            out["conv"].append({"forward": fwd, "input_grad": dx})
        for m in job.get("gemm", []):
            a = torch.rand(m["m"], m["k"], generator=g)
            b = torch.rand(m["k"], m["n"], generator=g)
            out["gemm"].append(median_time(lambda: torch.mm(a, b), repeat))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
