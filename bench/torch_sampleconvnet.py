"""PyTorch's non-private training step on Opacus's SampleConvNet (batch 256, 28x28), for
bench/dpsgd.bench.mjs. Prints one JSON line: {"examples_per_s": ..., "threads": ...}.
Usage: python3 torch_sampleconvnet.py SECONDS"""
import json
import sys
import time

import torch
from torch import nn

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(1, 16, 8, 2, padding=3), nn.ReLU(), nn.MaxPool2d(2, 1),
    nn.Conv2d(16, 32, 4, 2), nn.ReLU(), nn.MaxPool2d(2, 1),
    nn.Flatten(), nn.Linear(512, 32), nn.ReLU(), nn.Linear(32, 10),
)
opt = torch.optim.SGD(net.parameters(), lr=0.05)
x = torch.rand(256, 1, 28, 28)
y = torch.randint(0, 10, (256,))
loss_fn = nn.CrossEntropyLoss()


def step():
    opt.zero_grad()
    loss_fn(net(x), y).backward()
    opt.step()


for _ in range(5):
    step()
best = 0.0
for _ in range(3):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 3:
        step()
        n += 1
    best = max(best, n * 256 / (time.perf_counter() - t0))
print(json.dumps({"examples_per_s": round(best), "threads": torch.get_num_threads(), "torch": torch.__version__}))
