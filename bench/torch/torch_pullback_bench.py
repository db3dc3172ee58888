"""PyTorch CPU side of `bench pullback`: one excitation-pullback step (forward + input gradient,
batch 1, 224x224) on torchvision's resnet50 / vgg11_bn / densenet121 with paper A's soft backward
(ReLU: dy * sigmoid(z/T); max-pool: gradient of the surrogate soft pool), T = 0.3.

Usage: python torch_pullback_bench.py ARCH THREADS REPEAT
Prints one JSON line: {"arch", "threads", "median_ms", "min_ms", "peak_rss_mb"}. Run one
architecture per process so the peak RSS belongs to that model alone. Weights are random
(timing does not depend on their values).
"""
import json, resource, sys, time
import torch, torch.nn as nn, torch.nn.functional as F, torchvision

T = 0.3

class SoftReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z.clamp_min(0)
    @staticmethod
    def backward(ctx, dy):
        (z,) = ctx.saved_tensors
        return dy * torch.sigmoid(z / T)

class SoftReLU(nn.Module):
    def forward(self, z): return SoftReLUFn.apply(z)

class SurrogateSoftMaxPool(nn.Module):
    """Forward = hard max-pool; backward = gradient of sum softmax(x_w/T) x_w (zero padding)."""
    def __init__(self, p):
        super().__init__(); self.k, self.s, self.p = p.kernel_size, p.stride, p.padding
    def forward(self, x):
        hard = F.max_pool2d(x, self.k, self.s, self.p)
        n, c, h, w = x.shape
        cols = F.unfold(x, self.k, padding=self.p, stride=self.s).view(n, c, -1, hard.shape[2] * hard.shape[3])
        soft = (torch.softmax(cols / T, dim=2) * cols).sum(2).view_as(hard)
        return hard.detach() + (soft - soft.detach())

def swap(m):
    for name, child in m.named_children():
        if isinstance(child, nn.ReLU): setattr(m, name, SoftReLU())
        elif isinstance(child, nn.MaxPool2d): setattr(m, name, SurrogateSoftMaxPool(child))
        else: swap(child)
    return m

def main():
    arch, threads, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = swap(getattr(torchvision.models, arch)(weights=None)).eval()
    for p in model.parameters(): p.requires_grad_(False)   # a pullback needs no weight gradients
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x0 = torch.rand(1, 3, 224, 224) * 2 - 1
    times = []
    for i in range(repeat + 1):
        x = x0.clone().requires_grad_(True)
        t = time.perf_counter()
        logits = model(((x + 1) / 2 - mean) / std)
        logits[0, 0].backward()
        dt = (time.perf_counter() - t) * 1000
        if i > 0: times.append(dt)      # first iteration warms up
    times.sort()
    print(json.dumps({"arch": arch, "threads": threads, "median_ms": times[len(times) // 2], "min_ms": times[0],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))

if __name__ == "__main__":
    main()
