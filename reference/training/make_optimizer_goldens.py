"""Regenerates Tests/Fixtures/training/optimizers.safetensors: torch.optim trajectories on small tensors.

Run: $(reference/setup-env.sh --python) reference/training/make_optimizer_goldens.py
For every optimizer case <c> the file holds
  <c>.p0            initial parameter                  [5, 7] (35 values: two SIMD widths + a tail)
  <c>.g<k>          the fixed gradient fed at step k   (k = 0..STEPS-1)
  <c>.p<k+1>        the parameter after step k
  <c>.lr<k>         learning rate used at step k        shape [1] (tests a schedule changing mid-run)
Gradients are fixed tensors (not recomputed from a loss), so the test checks the update rule alone.
Inputs come from numpy's seeded generator and are stored in the file: Swift does not regenerate them.
"""
import os
import numpy as np
import torch
from safetensors.torch import save_file

STEPS = 6
SHAPE = (5, 7)
CASES = {
    "sgd": (torch.optim.SGD, dict()),
    "sgd_momentum": (torch.optim.SGD, dict(momentum=0.9)),
    "sgd_momentum_wd": (torch.optim.SGD, dict(momentum=0.9, weight_decay=5e-4)),
    "adam": (torch.optim.Adam, dict()),
    "adam_wd": (torch.optim.Adam, dict(weight_decay=1e-2)),
    "rmsprop": (torch.optim.RMSprop, dict()),
}
LRS = {
    "sgd": [0.1, 0.1, 0.1, 0.01, 0.01, 0.01],
    "sgd_momentum": [0.01, 0.01, 0.1, 0.1, 0.1, 0.001],
    "sgd_momentum_wd": [0.01, 0.1, 0.1, 0.1, 0.01, 0.001],
    "adam": [3e-4, 3e-4, 3e-4, 1e-3, 1e-3, 1e-3],
    "adam_wd": [1e-3] * STEPS,
    "rmsprop": [1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2],
}


def main():
    rng = np.random.default_rng(20260521)
    out = {}
    for name, (cls, kw) in CASES.items():
        p = torch.tensor(rng.standard_normal(SHAPE).astype(np.float32), requires_grad=True)
        out[f"{name}.p0"] = p.detach().clone()
        opt = cls([p], lr=LRS[name][0], foreach=False, **kw)
        for k in range(STEPS):
            # gradients of mixed scales, a few exact zeros (Adam/RMSprop must not divide by zero)
            g = rng.standard_normal(SHAPE).astype(np.float32) * np.float32(10.0 ** rng.integers(-3, 2))
            g[0, k % SHAPE[1]] = 0.0
            g = torch.tensor(g)
            for group in opt.param_groups:
                group["lr"] = LRS[name][k]
            p.grad = g.clone()
            opt.step()
            out[f"{name}.g{k}"] = g
            out[f"{name}.lr{k}"] = torch.tensor([LRS[name][k]], dtype=torch.float32)
            out[f"{name}.p{k + 1}"] = p.detach().clone()
    path = os.path.join(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "training"), "optimizers.safetensors")
    save_file(out, path, metadata={"source": "torch " + torch.__version__, "script": "reference/training/make_optimizer_goldens.py"})
    print("wrote", path, len(out), "tensors")


if __name__ == "__main__":
    main()
