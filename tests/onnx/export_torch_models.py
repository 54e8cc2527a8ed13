#!/usr/bin/python3
"""Exports a LeNet and a small ResNet from PyTorch to ONNX, with an input and PyTorch's output.

Usage: export_torch_models.py OUTDIR

Writes OUTDIR/<model>/model.onnx, input_0.pb and output_0.pb (ONNX TensorProtos) for
lenet and resnet. When python3-torch (or onnx) is absent it prints why, writes
OUTDIR/SKIPPED with the reason and exits 0: the C++ test then reports the skip.
"""
import os
import sys
import warnings


def main():
    if len(sys.argv) != 2:
        print("usage: export_torch_models.py OUTDIR", file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    skip = os.path.join(out, "SKIPPED")
    if os.path.exists(skip):
        os.remove(skip)
    warnings.simplefilter("ignore")
    try:
        import numpy as np
        for name, alias in (("float", float), ("int", int), ("bool", bool), ("object", object),
                            ("complex", complex), ("str", str)):
            if name not in np.__dict__:
                setattr(np, name, alias)
        import torch
        import torch.nn as nn
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        reason = f"PyTorch models not exported: {e} (install python3-torch and python3-onnx)"
        print(f"export_torch_models.py: SKIPPED: {reason}")
        with open(skip, "w") as f:
            f.write(reason + "\n")
        return 0

    torch.manual_seed(7)
    torch.set_num_threads(1)

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = torch.relu(self.fc1(x))
            x = torch.relu(self.fc2(x))
            return torch.log_softmax(self.fc3(x), dim=1)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16),
                                      nn.ReLU(), nn.MaxPool2d(3, 2, 1))
            self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.layers(self.stem(x))
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return self.fc(x)

    def randomize_bn(m):
        # Non-trivial running statistics, so that BatchNorm's inference form is exercised.
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.2, 0.2)

    models = {"lenet": (LeNet(), (2, 1, 28, 28)), "resnet": (ResNet(), (2, 3, 64, 64))}
    for name, (model, shape) in models.items():
        randomize_bn(model)
        model.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        torch.onnx.export(model, x, os.path.join(d, "model.onnx"), input_names=["input"],
                          output_names=["output"], opset_version=13,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        for fname, arr in (("input_0.pb", x), ("output_0.pb", y)):
            t = numpy_helper.from_array(arr.numpy().astype(np.float32))
            with open(os.path.join(d, fname), "wb") as f:
                f.write(t.SerializeToString())
        print(f"export_torch_models.py: {name}: input {tuple(shape)} -> output {tuple(y.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
