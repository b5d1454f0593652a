#!/usr/bin/env node
'use strict';
// Per-node kernel times of several models in ONNX Runtime's profiler, runs interleaved (each round
// runs every model 20 times), as tests/ort/ort_bench.js runs them (CPU, 1 thread, level 'all').
//   node bench/target/ort_profile.js SPEC.json ROUNDS A.onnx B.onnx ...
// SPEC: input shapes by model basename (models/cached_models.json format). Prints, per model, the
// median kernel time (us) of every node of the optimized graph and their sum. The profiler adds
// about 1-3 us per node, so compare models with each other, not with ort_bench.js latencies.
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require(require.resolve('onnxruntime-node', { paths: [path.join(__dirname, '../../tests/ort')] }));
const feeds = require('../../tests/ort/feeds');

async function main() {
  const [spec, rounds, ...files] = process.argv.slice(2);
  const runs = [];
  for (const file of files) {
    const prefix = `ort_profile_${process.pid}_${runs.length}`;
    const session = await ort.InferenceSession.create(file, { ...feeds.sessionOptions(1), enableProfiling: true,
      profileFilePrefix: path.join(os.tmpdir(), prefix) });
    const inputs = feeds.buildInputs(session.inputMetadata, { specEntry: feeds.loadSpecEntry(spec, [file]), inputsDir: null, inputFiles: {} }, feeds.makeRng(0));
    runs.push({ file, prefix, session, feed: feeds.makeFeeds(session.inputMetadata, inputs, 0, 0) });
  }
  for (let r = 0; r < Number(rounds); r++) {
    for (const e of runs) for (let i = 0; i < 20; i++) await feeds.runSession(e.session, e.file, e.feed);
  }
  for (const e of runs) {
    await e.session.endProfiling();  // writes PREFIX_<date>.json
    const name = fs.readdirSync(os.tmpdir()).find((f) => f.startsWith(`${e.prefix}_`) && f.endsWith('.json'));
    const profile = path.join(os.tmpdir(), name);
    const events = JSON.parse(fs.readFileSync(profile, 'utf8'));
    fs.unlinkSync(profile);
    const nodes = new Map();
    for (const ev of events) {
      if (ev.cat !== 'Node' || !ev.name.endsWith('_kernel_time')) continue;
      const key = `${ev.name.slice(0, -12)} (${ev.args.op_name})`;
      if (!nodes.has(key)) nodes.set(key, []);
      nodes.get(key).push(ev.dur);
    }
    const median = (v) => v.slice().sort((a, b) => a - b)[v.length >> 1];
    let sum = 0;
    process.stdout.write(`${e.file}\n`);
    for (const [key, durs] of nodes) {
      sum += median(durs);
      process.stdout.write(`  ${key.padEnd(50)} ${String(median(durs)).padStart(6)}\n`);
    }
    process.stdout.write(`  ${'sum of node medians'.padEnd(50)} ${String(sum).padStart(6)}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`ort_profile: ${feeds.oneLine(err)}\n`);
  process.exit(2);
});
