#!/usr/bin/env python3
"""Latency of the interactive page's full update, end to end (HTTP, as the page sees it).

    python3 bench/serve_latency.py [--runner PATH] [--repeat R] [--threads N]

Starts `runner serve` on a free loopback port, warms up (the MNIST CNN is trained or loaded; the
model is built), then times R requests of /api/explain each:
  - mnist_cnn, 5 PGA steps (the page's default view): target < 100 ms;
  - resnet50 at 224x224, 5 steps, torchvision weights when present, else synthetic (same arithmetic):
    target < 1.5 s on 2 cores.
Prints the median and the minimum wall time of the request, and the server's own compute time
(map + ascent + top-5 + PNGs, without HTTP). A benchmark, not a test: run it on a quiet machine;
it prints the load average so a loaded run can be recognised.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--runner", default=None)
ap.add_argument("--repeat", type=int, default=7)
ap.add_argument("--threads", type=int, default=None)
a = ap.parse_args()
runner = a.runner or os.path.join(subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], text=True).strip(), "runner")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cmd = [runner, "serve", "--port", str(port)] + (["--threads", str(a.threads)] if a.threads else [])
log = tempfile.TemporaryFile()
server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/api/models", timeout=2).read(); break
        except Exception:
            time.sleep(0.2)
    models = json.load(urllib.request.urlopen(base + "/api/models"))["models"]
    resnet = "torchvision" if any(m["model"] == "resnet50" and m["weights"] == "torchvision" and m["available"] for m in models) else "synthetic"
    views = [("mnist_cnn, 5 steps", "image=digit:0&target=3&steps=5", 0.100),
             (f"resnet50 ({resnet} weights) 224x224, 5 steps", f"model=resnet50&weights={resnet}&size=224&target=1&steps=5", 1.5)]
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}), threads: {a.threads or 'all'}")
    for name, query, target in views:
        urllib.request.urlopen(base + "/api/explain?" + query, timeout=3600).read()   # warm-up (training / building)
        walls, computes = [], []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            r = json.load(urllib.request.urlopen(base + "/api/explain?" + query, timeout=3600))
            walls.append(time.perf_counter() - t0)
            computes.append(r["milliseconds"]["compute"] / 1000)
        med = statistics.median(walls)
        print(f"{name}: median {1000 * med:.0f} ms, min {1000 * min(walls):.0f} ms (server compute median "
              f"{1000 * statistics.median(computes):.0f} ms) over {a.repeat}; target < {1000 * target:.0f} ms: "
              f"{'met' if med < target else 'NOT met'}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
finally:
    server.terminate(); server.wait()
