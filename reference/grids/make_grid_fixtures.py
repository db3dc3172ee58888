"""Fixtures for the cell-by-cell grid comparison (GridComparisonTests), made with numpy and PIL.

Run from the repository root with the reference environment (reference/README.md):

    $(reference/setup-env.sh --python) reference/grids/make_grid_fixtures.py

Writes to Tests/Fixtures/grids/:
  grid_a.png          a 3 x 4 grid of 32-pixel cells, padding 2 (torchvision make_grid's layout),
                      each cell a smooth random colour pattern min-max scaled to 0..255 on its own
  grid_a_q75.jpg      the same grid with each cell rescaled by its own affine map (as another
                      run's per-cell scaling would), then JPEG-compressed at quality 75 (PIL)
  grid_b.png          another grid made the same way from another seed
"""
import os

import numpy as np
from PIL import Image

ROWS, COLS, CELL, PAD = 3, 4, 32, 2
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = os.path.join(root, "Tests", "Fixtures", "grids")
os.makedirs(out, exist_ok=True)


def cell_pattern(rng):
    y, x = np.mgrid[0:CELL, 0:CELL] / CELL
    img = np.zeros((CELL, CELL, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.5, 4, 2).tolist() + [rng.uniform(0, 2 * np.pi)]
            img[:, :, c] += rng.normal() * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    img = (img - img.min()) / (img.max() - img.min())
    return img


def grid(seed, affine=None):
    rng = np.random.default_rng(seed)
    g = np.zeros((ROWS * (CELL + PAD) + PAD, COLS * (CELL + PAD) + PAD, 3))
    arng = np.random.default_rng(seed + 1000)
    for r in range(ROWS):
        for c in range(COLS):
            cell = cell_pattern(rng)
            if affine:
                cell = cell * arng.uniform(0.5, 0.8) + arng.uniform(0.05, 0.2)
            y0, x0 = PAD + r * (CELL + PAD), PAD + c * (CELL + PAD)
            g[y0:y0 + CELL, x0:x0 + CELL] = cell
    return Image.fromarray(np.round(g * 255).astype(np.uint8))


grid(1).save(os.path.join(out, "grid_a.png"))
grid(1, affine=True).save(os.path.join(out, "grid_a_q75.jpg"), quality=75)
grid(2).save(os.path.join(out, "grid_b.png"))
print("wrote", sorted(os.listdir(out)))
