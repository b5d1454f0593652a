#!/usr/bin/env node
'use strict';
// Median latency of one ONNX model in ONNX Runtime on fixed inputs, as one JSON object.
// Exit codes: 0 ok, 1 bad arguments, 2 the model failed to load or run.

const feeds = require('./feeds');

const { HarnessError } = feeds;

const kUsage = 'usage: ort_bench.js MODEL.onnx [--spec FILE] [--threads N] [--runs N] ' +
  '[--warmup N] [--seed N]';

function parseArgs(argv) {
  const opts = { file: null, spec: null, threads: 1, runs: 50, warmup: 5, seed: 0 };
  const int = (flag, v, min) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) {
      throw new HarnessError(1, `${flag} needs an integer >= ${min}, got '${v}'`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--spec': opts.spec = argv[++i]; break;
      case '--threads': opts.threads = int(a, argv[++i], 1); break;
      case '--runs': opts.runs = int(a, argv[++i], 1); break;
      case '--warmup': opts.warmup = int(a, argv[++i], 0); break;
      case '--seed': opts.seed = int(a, argv[++i], 0); break;
      case '-h':
      case '--help':
        process.stdout.write(`${kUsage}\n`);
        process.exit(0);
        break;
      default:
        if (a.startsWith('-') || opts.file) throw new HarnessError(1, `unexpected '${a}'\n${kUsage}`);
        opts.file = a;
    }
  }
  if (!opts.file) throw new HarnessError(1, kUsage);
  if (opts.spec === undefined) throw new HarnessError(1, '--spec needs a value');
  return opts;
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const specEntry = feeds.loadSpecEntry(opts.spec, [opts.file]);
  const t0 = process.hrtime.bigint();
  const session = await feeds.openSession(opts.file, opts.threads);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const inputs = feeds.buildInputs(session.inputMetadata,
    { specEntry, inputsDir: null, inputFiles: {} }, feeds.makeRng(opts.seed));
  const feed = feeds.makeFeeds(session.inputMetadata, inputs, 0, 0);
  for (let i = 0; i < opts.warmup; i++) await feeds.runSession(session, opts.file, feed);
  const times = [];
  for (let i = 0; i < opts.runs; i++) {
    const start = process.hrtime.bigint();
    await feeds.runSession(session, opts.file, feed);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const round = (v) => Math.round(v * 1000) / 1000;
  const report = {
    model: opts.file,
    spec_entry: specEntry ? specEntry.name : null,
    inputs: Object.fromEntries(Object.entries(feed).map(([k, t]) => [k, { dtype: t.type, shape: t.dims }])),
    threads: opts.threads,
    warmup: opts.warmup,
    runs: opts.runs,
    load_ms: round(loadMs),
    median_ms: round(quantile(times, 0.5)),
    min_ms: round(times[0]),
    p90_ms: round(quantile(times, 0.9)),
    mean_ms: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err) => {
  const code = err instanceof HarnessError ? err.code : 2;
  process.stderr.write(`ort_bench: ${err instanceof HarnessError ? err.message : feeds.oneLine(err)}\n`);
  process.exit(code);
});
