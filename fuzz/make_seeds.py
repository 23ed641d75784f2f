#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (gitignored).

Usage: python3 fuzz/make_seeds.py [DATA_DIR] [CHECKPOINT ...]

DATA_DIR (default: $SALIENCY_DATA, else the shipped data/sample) supplies a few
small real JPEGs; each CHECKPOINT (e.g. runs/x/model.safetensors of a tiny run) is copied into
the checkpoint corpus. Everything else is built here from the format descriptions.
"""

import hashlib
import json
import os
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def idx(dims, payload, elem=8):
    head = bytes([0, 0, elem, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(payload)


def idx_seeds():
    px = [(i * 37) % 256 for i in range(2 * 28 * 28)]
    put("idx_images", "two_28x28", idx([2, 28, 28], px))
    put("idx_images", "two_3x4", idx([2, 3, 4], px[:24]))
    put("idx_images", "empty", idx([0, 28, 28], []))
    put("idx_images", "little_endian", bytes([0, 0, 8, 3]) + b"".join(struct.pack("<I", d) for d in [2, 3, 4]) + bytes(24))
    put("idx_images", "short_header", bytes([0, 0, 8, 3, 0, 0, 0, 1]))
    put("idx_images", "gzip_magic", bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0]))
    put("idx_labels", "five", idx([5], [0, 1, 2, 9, 7]))
    put("idx_labels", "empty", idx([0], []))
    put("idx_labels", "rank3", idx([1, 2, 2], [0, 0, 0, 0]))
    put("idx_labels", "f32_type", idx([1], [0, 0, 0, 0], elem=0x0D))


def payload_sha256(tensors):
    """The checkpoint checksum: tensors in name order, each framed by name length, name, rank,
    dimensions (all u64 little-endian) and its f32 little-endian bytes."""
    h = hashlib.sha256()
    for name, shape, data in sorted(tensors, key=lambda t: t[0]):
        h.update(struct.pack("<Q", len(name.encode())) + name.encode())
        h.update(struct.pack("<Q", len(shape)))
        for d in shape:
            h.update(struct.pack("<Q", d))
        h.update(data)
    return h.hexdigest()


def checkpoint(tensors, metadata):
    """A safetensors file with the checkpoint's reserved metadata keys."""
    meta = dict(metadata)
    meta["format_version"] = "1"
    meta["payload_sha256"] = payload_sha256(tensors)
    header = {"__metadata__": meta}
    offset = 0
    blob = b""
    for name, shape, data in tensors:
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + blob


def f32s(values):
    return b"".join(struct.pack("<f", v) for v in values)


def checkpoint_seeds(extra):
    names = json.dumps(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                        "Sneaker", "Bag", "Ankle boot"])
    meta = {"model": "deep", "dataset": "fashion-mnist", "input_shape": "1,28,28",
            "classes": names, "seed": "0", "step": "0", "epoch": "0"}
    put("checkpoint", "deep_meta_two_tensors", checkpoint(
        [("conv1.bias", [2], f32s([0.5, -0.5])), ("conv1.weight", [2, 1, 1, 1], f32s([1.0, 2.0]))], meta))
    put("checkpoint", "empty_tensor", checkpoint([("x", [0], b"")], {}))
    put("checkpoint", "no_tensors", checkpoint([], meta))
    # The metadata reading: values separated by zero bytes (see the target).
    for name, values in [
        ("meta_deep", ["deep", "fashion-mnist", "1,28,28", names, "0", "0", "0"]),
        ("meta_alexnet", ["alexnet", "flowers", "3,256,256", '["a","b"]', "1", "2", "3"]),
        ("meta_medium", ["medium", "flowers17", "1,64,64", '["a","b","c"]', "0", "9", "1"]),
        ("meta_missing", ["deep", "-", "1,28,28", "-", "0", "0", "0"]),
    ]:
        put("checkpoint", name, "\0".join(values).encode())
    for i, path in enumerate(extra):
        put("checkpoint", f"real_{i}", Path(path).read_bytes())


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, color_type, bit_depth, pixel_bytes):
    """A PNG with filter 0 rows of `pixel_bytes(x, y)`."""
    rows = b"".join(b"\0" + b"".join(pixel_bytes(x, y) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def image_seeds(data_dir):
    # First byte: the target's mode (gray flag and output side); the rest is the file.
    def put_image(name, data, mode=0x06):
        put("image_decode", name, bytes([mode]) + data)

    put_image("gray8", png(5, 3, 0, 8, lambda x, y: bytes([(x * 50 + y) % 256])))
    put_image("rgb8", png(4, 4, 2, 8, lambda x, y: bytes([x * 60, y * 60, 128])), mode=0x09)
    put_image("rgba8", png(3, 2, 6, 8, lambda x, y: bytes([x * 80, y * 100, 7, 255])))
    put_image("gray16", png(2, 2, 0, 16, lambda x, y: struct.pack(">H", x * 30000 + y)))
    put_image("huge_claim", png(1, 1, 0, 8, lambda x, y: b"\0")[:16] + struct.pack(">II", 100000, 100000)
              + png(1, 1, 0, 8, lambda x, y: b"\0")[24:])
    put_image("text", b"just some text, not an image")
    jpegs = sorted((p for p in Path(data_dir).glob("flowers/*/*.jpg")), key=lambda p: p.stat().st_size)
    for i, p in enumerate(jpegs[:2]):
        real = p.read_bytes()
        put_image(f"jpeg_{i}", real)
        put_image(f"jpeg_{i}_cut", real[: len(real) // 2])
        put_image(f"jpeg_{i}_header", real[:300])


def main():
    default_data = os.environ.get("SALIENCY_DATA") or str(HERE.parent / "data" / "sample")
    data_dir = sys.argv[1] if len(sys.argv) > 1 else default_data
    idx_seeds()
    checkpoint_seeds(sys.argv[2:])
    image_seeds(data_dir)
    (CORPUS / "geometry").mkdir(parents=True, exist_ok=True)
    for target in sorted(p.name for p in CORPUS.iterdir()):
        print(f"{target}: {len(list((CORPUS / target).iterdir()))} seeds")


if __name__ == "__main__":
    main()
