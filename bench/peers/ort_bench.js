// ONNX Runtime timings for the issue-5 peer table (onnxruntime-node 1.30, CPU, offline).
//
//   node bench/peers/ort_bench.js DIR THREADS [RUNS]
//
// Runs DIR/mlp.onnx at batch 1, 64 and 256 and DIR/resnet18_b1.onnx, DIR/resnet18_b16.onnx
// (written by torch_bench.py) with intra-op threads = THREADS, and prints one line per case:
// `ort <case> median_ms min_ms`.
const ort = require('onnxruntime-node');
const path = require('path');

async function timed(session, feeds, runs, warmup) {
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < runs; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return [times[Math.floor(times.length / 2)], times[0]];
}

function randomInput(dims) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = Math.random() * 2 - 1;
  return new ort.Tensor('float32', data, dims);
}

async function main() {
  const [dir, threadsText, runsText] = process.argv.slice(2);
  const threads = Number(threadsText || 1);
  const runs = Number(runsText || 200);
  const options = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const report = (name, [median, min]) =>
    console.log(`ort ${name} ${median.toFixed(4)} ${min.toFixed(4)}`);
  const mlp = await ort.InferenceSession.create(path.join(dir, 'mlp.onnx'), options);
  for (const batch of [1, 64, 256])
    report(`mlp_infer_b${batch}`, await timed(mlp, {data: randomInput([batch, 784])}, runs, 5));
  for (const [batch, n] of [[1, Math.max(10, runs / 10)], [16, Math.max(5, runs / 40)]]) {
    const s = await ort.InferenceSession.create(path.join(dir, `resnet18_b${batch}.onnx`), options);
    report(`resnet18_infer_b${batch}`,
           await timed(s, {data: randomInput([batch, 3, 224, 224])}, n, 2));
  }
}

main().catch((e) => {
  console.error(`ort_bench: ${e.message}`);
  process.exit(1);
});
