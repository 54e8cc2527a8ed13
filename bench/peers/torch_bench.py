"""PyTorch timings for the issue-5 peer table, and the models exported for ONNX Runtime.

Run under Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision) by
bench/peers.sh, which sets OPENBLAS_NUM_THREADS to the thread count as well (PyTorch's matrix
products run on OpenBLAS threads that torch.set_num_threads does not limit).

  /usr/bin/python3 bench/peers/torch_bench.py --threads 1 --out DIR [--runs N]

Prints one line per case: `torch <case> median_ms min_ms`. Writes DIR/mlp.onnx,
DIR/resnet18_b1.onnx, DIR/resnet18_b16.onnx (fixed seeds), so that ONNX Runtime runs the same
networks with the same weights, and for kiln's models::ResNet18 (bench/models_bench.cpp) the
same weights unfolded: DIR/resnet18.params (torchvision's state_dict under its own names, in
MXNet's .params format, docs/formats.md; num_batches_tracked left out), with the inputs the
ResNet-18 cases ran on and PyTorch's logits for them, DIR/resnet18_b{1,16}_{input,torch}.npy.
The BatchNorm layers get random affine parameters and statistics (their own generator, seed 1)
instead of the identity that a fresh resnet18() has, so that a wrong mapping of them shows.
"""
import argparse
import os
import statistics
import struct
import time

import numpy as np
import torch
import torchvision


def mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 10))


def timed(fn, runs, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def save_mxnet_params(path, arrays):
    """Writes {name: array} as an MXNet NDArray list (V2 arrays, float32, cpu(0), names kept)."""
    parts = [struct.pack("<QQQ", 0x112, 0, len(arrays))]
    for name, a in arrays.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        if a.ndim == 0:
            raise SystemExit(f"{name}: a 0-d array needs MXNet's V3 format")
        parts.append(struct.pack("<Iii", 0xF993FAC9, 0, a.ndim))  # magic, dense, ndim
        parts.append(struct.pack(f"<{a.ndim}q", *a.shape))
        parts.append(struct.pack("<iii", 1, 0, 0))  # cpu(0), type flag 0: float32
        parts.append(a.tobytes())
    parts.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        b = name.encode()
        parts.append(struct.pack("<Q", len(b)) + b)
    with open(path + ".tmp", "wb") as f:
        f.write(b"".join(parts))
    os.replace(path + ".tmp", path)


def randomize_batchnorm(net):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                if m.eps != 1e-5:  # models::ResNet18's BatchNorm has eps 1e-5
                    raise SystemExit(f"BatchNorm eps {m.eps}, expected 1e-5")
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def report(case, result):
    print(f"torch {case} {result[0]:.4f} {result[1]:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        raise SystemExit("set OPENBLAS_NUM_THREADS to --threads (bench/peers.sh does)")
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)

    net = mlp().eval()
    with torch.no_grad():
        for batch in (1, 64, 256):
            x = torch.randn(batch, 784)
            report(f"mlp_infer_b{batch}", timed(lambda: net(x), args.runs))
    torch.onnx.export(net, torch.randn(1, 784), os.path.join(args.out, "mlp.onnx"),
                      input_names=["data"], output_names=["out"],
                      dynamic_axes={"data": {0: "batch"}, "out": {0: "batch"}}, opset_version=13)

    # One SGD step at batch 64: forward, softmax cross-entropy, backward, update.
    train = mlp().train()
    opt = torch.optim.SGD(train.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(64, 784)
    y = torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(train(x), y).backward()
        opt.step()

    report("mlp_train_b64", timed(step, args.runs))

    resnet = torchvision.models.resnet18().eval()
    randomize_batchnorm(resnet)
    save_mxnet_params(os.path.join(args.out, "resnet18.params"),
                      {k: v.numpy() for k, v in resnet.state_dict().items()
                       if not k.endswith("num_batches_tracked")})
    with torch.no_grad():
        for batch, runs in ((1, max(10, args.runs // 10)), (16, max(5, args.runs // 40))):
            x = torch.randn(batch, 3, 224, 224)
            np.save(os.path.join(args.out, f"resnet18_b{batch}_input.npy"), x.numpy())
            np.save(os.path.join(args.out, f"resnet18_b{batch}_torch.npy"), resnet(x).numpy())
            report(f"resnet18_infer_b{batch}", timed(lambda: resnet(x), runs, warmup=2))
            torch.onnx.export(resnet, x, os.path.join(args.out, f"resnet18_b{batch}.onnx"),
                              input_names=["data"], output_names=["out"], opset_version=13)


if __name__ == "__main__":
    main()
