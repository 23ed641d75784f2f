#!/usr/bin/env python3
"""Cuts the shipped sample from the official data (run once; its output is committed).

Usage: python3 data/sample/make_sample.py SRC   (SRC holds fashion-mnist/ and flowers/)

- Fashion-MNIST: the first 1,000 training and the first 200 test images of each class, in the
  official files' order, written in the official IDX format, gzipped with mtime 0 (so the output
  is the same bytes on every run). Pixels and labels are copied unchanged.
- flowers: every photo of the 200-photo TensorFlow flower_photos subset (40 per class), the
  original JPEG bytes unchanged, with its attribution file LICENSE.txt.
"""
import gzip
import hashlib
import os
import shutil
import struct
import sys

TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200


def read_idx(path):
    data = gzip.open(path).read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return magic, shape, data[4 + 4 * dims :]


def write_idx(path, magic, shape, body):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(shape), *shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(header + body)


def cut_fashion(src, dst, split, per_class):
    im_magic, (n, h, w), images = read_idx(f"{src}/{split}-images-idx3-ubyte.gz")
    lb_magic, (m,), labels = read_idx(f"{src}/{split}-labels-idx1-ubyte.gz")
    assert n == m and h == w == 28
    taken, counts = [], [0] * 10
    for i, label in enumerate(labels):
        if counts[label] < per_class:
            counts[label] += 1
            taken.append(i)
    assert counts == [per_class] * 10, counts
    body = b"".join(images[i * 784 : (i + 1) * 784] for i in taken)
    write_idx(f"{dst}/{split}-images-idx3-ubyte.gz", im_magic, (len(taken), 28, 28), body)
    write_idx(f"{dst}/{split}-labels-idx1-ubyte.gz", lb_magic, (len(taken),),
              bytes(labels[i] for i in taken))


def main():
    src = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    fm = os.path.join(here, "fashion-mnist")
    os.makedirs(fm, exist_ok=True)
    cut_fashion(f"{src}/fashion-mnist", fm, "train", TRAIN_PER_CLASS)
    cut_fashion(f"{src}/fashion-mnist", fm, "t10k", TEST_PER_CLASS)
    fl = os.path.join(here, "flowers")
    if os.path.exists(fl):
        shutil.rmtree(fl)
    shutil.copytree(f"{src}/flowers", fl)
    sums = []
    for root, _, files in os.walk(here):
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, here)
            if rel.startswith(("fashion-mnist/", "flowers/")):
                sums.append((rel, hashlib.sha256(open(p, "rb").read()).hexdigest()))
    with open(os.path.join(here, "SHA256SUMS"), "w") as out:
        for rel, digest in sorted(sums):
            out.write(f"{digest}  {rel}\n")


if __name__ == "__main__":
    main()
