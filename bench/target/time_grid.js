#!/usr/bin/env node
'use strict';
// Times every model of a grid (bench/target/make_grid.py) in ONNX Runtime as tests/ort/ort_bench.js
// does (CPU, 1 thread, sequential, seeded inputs), interleaved: each round visits every model once
// (3 warmup runs, then runs for ~budget ms, at least 5), so machine noise hits all models alike.
//   node bench/target/time_grid.js GRID_DIR [--rounds N] [--budget-ms MS] [--spec FILE] > timings.json
// --spec: input shapes and values by model basename, as tests/ort/ort_bench.js (models/cached_models.json).
// Output: {"cpu": ..., "ort": ..., "rounds": N, "models": {file: [median_us per round]}}.
const fs = require('fs');
const os = require('os');
const path = require('path');
const feeds = require('../../tests/ort/feeds');

async function main() {
  const argv = process.argv.slice(2);
  const dir = argv[0];
  let rounds = 5;
  let budget = 30;
  let spec = null;
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--rounds') rounds = Number(argv[++i]);
    else if (argv[i] === '--budget-ms') budget = Number(argv[++i]);
    else if (argv[i] === '--spec') spec = argv[++i];
    else throw new Error(`unexpected '${argv[i]}'`);
  }
  const grid = JSON.parse(fs.readFileSync(path.join(dir, 'grid.json'), 'utf8'));
  const entries = [];
  for (const g of grid) {
    const file = path.join(dir, g.file);
    const session = await feeds.openSession(file, 1);
    const inputs = feeds.buildInputs(session.inputMetadata, { specEntry: feeds.loadSpecEntry(spec, [file]), inputsDir: null, inputFiles: {} }, feeds.makeRng(0));
    entries.push({ file: g.file, session, feed: feeds.makeFeeds(session.inputMetadata, inputs, 0, 0), medians: [] });
  }
  for (let r = 0; r < rounds; r++) {
    for (const e of entries) {
      for (let i = 0; i < 3; i++) await feeds.runSession(e.session, e.file, e.feed);
      const times = [];
      const start = process.hrtime.bigint();
      while (times.length < 5 || Number(process.hrtime.bigint() - start) / 1e6 < budget) {
        const t0 = process.hrtime.bigint();
        await feeds.runSession(e.session, e.file, e.feed);
        times.push(Number(process.hrtime.bigint() - t0) / 1e3);
        if (times.length >= 2000) break;
      }
      times.sort((a, b) => a - b);
      e.medians.push(times[times.length >> 1]);
    }
  }
  const cpu = os.cpus()[0] ? os.cpus()[0].model : 'unknown';
  const ort = require(require.resolve('onnxruntime-node/package.json', { paths: [path.join(__dirname, '../../tests/ort')] })).version;
  const out = { cpu, ort, rounds, budget_ms: budget, models: {} };
  for (const e of entries) out.models[e.file] = e.medians.map((v) => Math.round(v * 100) / 100);
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
}

main().catch((err) => {
  process.stderr.write(`time_grid: ${feeds.oneLine(err)}\n`);
  process.exit(2);
});
