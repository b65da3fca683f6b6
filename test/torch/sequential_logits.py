"""Load a coreason-enclave ModelSpec and safetensors file into torch.nn.Sequential; print logits.

Usage: python3 sequential_logits.py SPEC.json MODEL.safetensors INPUT.f32 ROWS OUT.f32
The safetensors file is parsed by hand (Debian has no python3-safetensors): an 8-byte
little-endian header length, a JSON header, then raw little-endian tensors. Tensor names are
PyTorch's: "layers.<i>.<param>" is the state_dict of a module whose `layers` is the Sequential,
so stripping "layers." loads a bare nn.Sequential.
"""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn


class TemperedSigmoid(nn.Module):
    def __init__(self, scale, inverse_temperature, offset):
        super().__init__()
        self.s, self.t, self.o = scale, inverse_temperature, offset

    def forward(self, x):
        return self.s * torch.sigmoid(self.t * x) - self.o


def layer(spec, shape):
    t = spec["type"]
    if t == "linear":
        return nn.Linear(spec["in_features"], spec["out_features"], bias=spec.get("bias", True))
    if t == "conv2d":
        return nn.Conv2d(spec["in_channels"], spec["out_channels"], spec["kernel_size"], stride=spec.get("stride", 1),
                         padding=spec.get("padding", 0), dilation=spec.get("dilation", 1),
                         groups=spec.get("groups", 1), bias=spec.get("bias", True))
    if t == "maxpool2d":
        return nn.MaxPool2d(spec["kernel_size"], stride=spec.get("stride"), padding=spec.get("padding", 0))
    if t == "avgpool2d":
        return nn.AvgPool2d(spec["kernel_size"], stride=spec.get("stride"), padding=spec.get("padding", 0),
                            count_include_pad=spec.get("count_include_pad", True))
    if t == "groupnorm":
        return nn.GroupNorm(spec["num_groups"], spec["num_channels"], eps=spec.get("eps", 1e-5),
                            affine=spec.get("affine", True))
    if t == "layernorm":
        return nn.LayerNorm(spec["dim"], eps=spec.get("eps", 1e-5))
    if t == "flatten":
        return nn.Flatten()
    if t == "embedding":
        return nn.Embedding(spec["num_embeddings"], spec["embedding_dim"])
    if t == "relu":
        return nn.ReLU()
    if t == "tanh":
        return nn.Tanh()
    if t == "gelu":
        return nn.GELU(approximate="tanh")
    if t == "tempered_sigmoid":
        return TemperedSigmoid(spec.get("scale", 2), spec.get("inverse_temperature", 2), spec.get("offset", 1))
    if t == "dropout":
        return nn.Dropout(spec["p"])
    raise SystemExit(f"unsupported layer type {t}")


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(body[a:b], dtype="<f4").reshape(info["shape"]).copy())
    return out


def main():
    spec_path, model_path, input_path, rows, out_path = sys.argv[1:6]
    spec = json.load(open(spec_path))
    net = nn.Sequential(*[layer(l, None) for l in spec["layers"]])
    state = {k[len("layers."):]: v for k, v in read_safetensors(model_path).items()}
    net.load_state_dict(state, strict=True)
    net.eval()
    shape = [int(rows)] + list(spec.get("input_shape", [spec["input_dim"]]))
    x = torch.from_numpy(np.fromfile(input_path, dtype="<f4").reshape(shape))
    if spec["layers"][0]["type"] == "embedding":
        x = x.long()
    with torch.no_grad():
        y = net(x).numpy().astype("<f4")
    y.tofile(out_path)


if __name__ == "__main__":
    main()
