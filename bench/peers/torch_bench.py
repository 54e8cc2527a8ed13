"""PyTorch timings for the issue-5 peer table, and the models exported for ONNX Runtime.

Run under Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision) by
bench/peers.sh, which sets OPENBLAS_NUM_THREADS to the thread count as well (PyTorch's matrix
products run on OpenBLAS threads that torch.set_num_threads does not limit).

  /usr/bin/python3 bench/peers/torch_bench.py --threads 1 --out DIR [--runs N]

Prints one line per case: `torch <case> median_ms min_ms`. Writes DIR/mlp.onnx,
DIR/resnet18_b1.onnx, DIR/resnet18_b16.onnx (fixed seeds), so that ONNX Runtime runs the same
networks with the same weights.
"""
import argparse
import os
import statistics
import time

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
    with torch.no_grad():
        for batch, runs in ((1, max(10, args.runs // 10)), (16, max(5, args.runs // 40))):
            x = torch.randn(batch, 3, 224, 224)
            report(f"resnet18_infer_b{batch}", timed(lambda: resnet(x), runs, warmup=2))
            torch.onnx.export(resnet, x, os.path.join(args.out, f"resnet18_b{batch}.onnx"),
                              input_names=["data"], output_names=["out"], opset_version=13)


if __name__ == "__main__":
    main()
