"""PyTorch CPU side of `bench train`: training throughput (images/s) of paper B's C4GAP, width 128,
on 32x32x3 inputs, batch 32, Adam, cross-entropy — as DNN and as DLGN(x,1) with soft gates
(beta = 10), following docs/method.md:
  DNN:  4 x [conv3x3 pad 1, ReLU] -> global average pool -> linear
  DLGN: feature net = the same 4 convs WITHOUT ReLUs (deep linear) on x, giving q_f per layer;
        value net on a constant-1 input: z_v = conv(z_v_prev) * sigmoid(beta * q_f) -> GAP -> linear
Usage: python torch_train_bench.py THREADS REPEAT     -> one JSON line per variant
"""
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

class C4GAP(nn.Module):
    def __init__(self, width=128, classes=10, dlgn=False, beta=10.0):
        super().__init__()
        self.dlgn, self.beta = dlgn, beta
        chans = [3] + [width] * 4
        self.value = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(4))
        if dlgn:
            self.feature = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(4))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        if not self.dlgn:
            for c in self.value: x = F.relu(c(x))
        else:
            h, z = x, torch.ones_like(x)
            for cf, cv in zip(self.feature, self.value):
                h = cf(h)                                   # deep linear gating network
                z = cv(z) * torch.sigmoid(self.beta * h)    # value network gated by it
            x = z
        return self.head(x.mean((2, 3)))

def main():
    threads, repeat = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(32, 3, 32, 32); y = torch.randint(0, 10, (32,))
    for variant in ["dnn", "dlgn"]:
        model = C4GAP(dlgn=variant == "dlgn")
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        times = []
        for i in range(repeat + 1):
            t = time.perf_counter()
            opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
            if i > 0: times.append(time.perf_counter() - t)
        times.sort()
        med = times[len(times) // 2]
        print(json.dumps({"variant": variant, "threads": threads, "median_ms": med * 1000, "images_per_s": 32 / med}))

if __name__ == "__main__":
    main()
