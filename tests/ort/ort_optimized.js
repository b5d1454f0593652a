#!/usr/bin/env node
'use strict';
// Writes the graph ONNX Runtime actually runs: the model after the session's graph optimizations
// (tests/ort/feeds.js session options: CPU, 1 thread, level 'all'), through optimizedModelFilePath.
//   node tests/ort/ort_optimized.js MODEL.onnx OUT.onnx
// Exit codes: 0 ok, 1 bad arguments, 2 the model failed to load.
// Level 'all' includes the layout transformations (NCHWc float convs, NHWC integer convs), so the
// written model is specific to this CPU; ONNX Runtime warns about that on stderr, which is expected.

const ort = require('onnxruntime-node');
const feeds = require('./feeds');

async function main() {
  const [file, out] = process.argv.slice(2);
  if (!file || !out || process.argv.length !== 4) throw new feeds.HarnessError(1, 'usage: ort_optimized.js MODEL.onnx OUT.onnx');
  try {
    await ort.InferenceSession.create(file, { ...feeds.sessionOptions(1), optimizedModelFilePath: out, logSeverityLevel: 3 });
  } catch (err) {
    throw new feeds.HarnessError(2, `${file}: failed to load: ${feeds.oneLine(err)}`);
  }
}

main().catch((err) => {
  process.stderr.write(`ort_optimized: ${feeds.oneLine(err)}\n`);
  process.exit(err instanceof feeds.HarnessError ? err.code : 2);
});
