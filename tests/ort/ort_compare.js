#!/usr/bin/env node
'use strict';
// Run a reference and a candidate ONNX model on identical inputs in ONNX Runtime and compare
// every output. See README.md for the options; exit codes: 0 ok, 1 bad arguments or input
// files, 2 a model failed to load or run, 4 a gate was missed or the models are not comparable.

const fs = require('fs');
const path = require('path');
const npy = require('./npy');
const feeds = require('./feeds');

const { HarnessError } = feeds;

const kUsage = `usage: ort_compare.js REF.onnx CAND.onnx [--spec FILE] [--spec-data]
       [--inputs DIR] [--input NAME=FILE.npy ...] [--batch B] [--seed N] [--samples K]
       [--labels y.npy] [--label-output NAME] [--threads N] [--save-outputs DIR] [--json]
       [--min-cosine X] [--min-snr DB] [--require-identical] [--min-top1 X] [--max-accuracy-drop POINTS]`;

function parseArgs(argv) {
  const opts = {
    files: [], spec: null, specData: false, inputsDir: null, inputFiles: {}, batch: 0, seed: 0,
    samples: 1, labels: null, labelOutput: null, threads: 1, saveOutputs: null, json: false,
    minCosine: null, minSnr: null, requireIdentical: false, minTop1: null, maxAccuracyDrop: null,
  };
  const number = (flag, v, { integer = false, min = -Infinity } = {}) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
      throw new HarnessError(1, `${flag} needs ${integer ? 'an integer' : 'a number'}` +
        `${min > -Infinity ? ` >= ${min}` : ''}, got '${v}'`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new HarnessError(1, `${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--spec': opts.spec = next(); break;
      case '--spec-data': opts.specData = true; break;
      case '--inputs': opts.inputsDir = next(); break;
      case '--input': {
        const v = next();
        const eq = v.indexOf('=');
        if (eq <= 0) throw new HarnessError(1, `--input needs NAME=FILE.npy, got '${v}'`);
        opts.inputFiles[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case '--batch': opts.batch = number(a, next(), { integer: true, min: 0 }); break;
      case '--seed': opts.seed = number(a, next(), { integer: true, min: 0 }); break;
      case '--samples': opts.samples = number(a, next(), { integer: true, min: 1 }); break;
      case '--labels': opts.labels = next(); break;
      case '--label-output': opts.labelOutput = next(); break;
      case '--threads': opts.threads = number(a, next(), { integer: true, min: 1 }); break;
      case '--save-outputs': opts.saveOutputs = next(); break;
      case '--json': opts.json = true; break;
      case '--min-cosine': opts.minCosine = number(a, next()); break;
      case '--require-identical': opts.requireIdentical = true; break;
      case '--min-top1': opts.minTop1 = number(a, next()); break;
      case '--min-snr': opts.minSnr = number(a, next()); break;
      case '--max-accuracy-drop': opts.maxAccuracyDrop = number(a, next()); break;
      case '-h':
      case '--help':
        process.stdout.write(`${kUsage}\n`);
        process.exit(0);
        break;
      default:
        if (a.startsWith('-')) throw new HarnessError(1, `unknown option '${a}'\n${kUsage}`);
        opts.files.push(a);
    }
  }
  if (opts.files.length !== 2) throw new HarnessError(1, `need REF and CAND models\n${kUsage}`);
  return opts;
}

/** Accumulates one output over all runs of both models. */
class OutputStats {
  constructor(name) {
    this.name = name;
    this.dot = 0;
    this.refSq = 0;
    this.candSq = 0;
    this.errSq = 0;
    this.maxAbsErr = 0;
    this.nonFinite = false;
    this.identical = true;
    this.rows = 0;
    this.agree = 0;
    this.topOk = true;
    this.shape = null;
    this.ref = [];
    this.cand = [];
  }

  add(refT, candT, keep) {
    const dims = refT.dims.join(',');
    if (dims !== candT.dims.join(',')) {
      throw new HarnessError(4, `output '${this.name}': shape [${refT.dims}] vs [${candT.dims}]`);
    }
    if (refT.type !== candT.type || !Buffer.from(refT.data.buffer, refT.data.byteOffset,
      refT.data.byteLength).equals(Buffer.from(candT.data.buffer, candT.data.byteOffset,
      candT.data.byteLength))) {
      this.identical = false;
    }
    const a = feeds.toFloat64(refT.type, refT.data);
    const b = feeds.toFloat64(candT.type, candT.data);
    for (let i = 0; i < a.length; i++) {
      const d = a[i] - b[i];
      if (!Number.isFinite(d)) {
        if (!(a[i] === b[i])) this.nonFinite = true;
        continue;
      }
      this.dot += a[i] * b[i];
      this.refSq += a[i] * a[i];
      this.candSq += b[i] * b[i];
      this.errSq += d * d;
      if (Math.abs(d) > this.maxAbsErr) this.maxAbsErr = Math.abs(d);
    }
    const last = refT.dims.length ? refT.dims[refT.dims.length - 1] : 1;
    if (last < 2) this.topOk = false;
    else {
      const ra = argmaxRows(a, last);
      const rb = argmaxRows(b, last);
      for (let r = 0; r < ra.length; r++) if (ra[r] === rb[r]) this.agree++;
      this.rows += ra.length;
    }
    if (this.shape === null) this.shape = refT.dims.slice();
    else if (this.shape.length) this.shape[0] += refT.dims[0];
    if (keep) {
      this.ref.push({ type: refT.type, dims: refT.dims.slice(), data: refT.data });
      this.cand.push({ type: candT.type, dims: candT.dims.slice(), data: candT.data });
    }
  }

  result() {
    let cosine;
    if (this.nonFinite) cosine = NaN;
    else if (this.refSq === 0 && this.candSq === 0) cosine = 1;
    else if (this.refSq === 0 || this.candSq === 0) cosine = 0;
    else cosine = this.dot / Math.sqrt(this.refSq * this.candSq);
    let snr;
    if (this.nonFinite) snr = NaN;
    else if (this.errSq === 0) snr = Infinity;
    else snr = 10 * Math.log10(this.refSq / this.errSq);
    return {
      cosine,
      snr_db: snr,
      max_abs_err: this.nonFinite ? NaN : this.maxAbsErr,
      top1_agreement: this.topOk && this.rows > 0 ? this.agree / this.rows : null,
      identical: this.identical,
    };
  }
}

function argmaxRows(values, width) {
  const rows = Math.floor(values.length / width);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < width; j++) {
      if (values[r * width + j] > values[r * width + best]) best = j;
    }
    out[r] = best;
  }
  return out;
}

function concatForSave(chunks) {
  const first = chunks[0];
  const total = chunks.reduce((n, c) => n + c.data.length, 0);
  const data = new first.data.constructor(total);
  let off = 0;
  for (const c of chunks) {
    data.set(c.data, off);
    off += c.data.length;
  }
  const rows = chunks.reduce((n, c) => n + (c.dims.length ? c.dims[0] : 1), 0);
  const shape = first.dims.length ? [rows, ...first.dims.slice(1)] : [chunks.length];
  return { dtype: first.type, shape, data };
}

function safeName(name) {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

function fmt(v, digits) {
  if (v === null) return 'n/a';
  if (typeof v === 'boolean') return String(v);
  if (!Number.isFinite(v)) return String(v);
  return v.toFixed(digits);
}

function jsonReplacer(_key, v) {
  // JSON has no Infinity/NaN; spell them as strings so the report stays valid JSON.
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [refFile, candFile] = opts.files;
  const specEntry = feeds.loadSpecEntry(opts.spec, [refFile, candFile]);
  if (opts.spec && !specEntry && !opts.json) {
    process.stderr.write(`ort_compare: note: ${opts.spec} has no entry for ` +
      `${path.basename(refFile)} or ${path.basename(candFile)}; using model metadata\n`);
  }
  if (opts.specData) {
    if (!specEntry || !specEntry.test_inputs) {
      throw new HarnessError(1, '--spec-data: the spec entry has no test_inputs');
    }
    for (const [name, file] of Object.entries(specEntry.test_inputs)) {
      if (!opts.inputFiles[name]) opts.inputFiles[name] = path.join(specEntry.dir, file);
    }
    if (!opts.labels && specEntry.test_labels) {
      opts.labels = path.join(specEntry.dir, specEntry.test_labels);
    }
  }

  const ref = await feeds.openSession(refFile, opts.threads);
  const cand = await feeds.openSession(candFile, opts.threads);
  const refInputs = ref.inputMetadata.map((m) => m.name).sort().join(',');
  const candInputs = cand.inputMetadata.map((m) => m.name).sort().join(',');
  if (refInputs !== candInputs) {
    throw new HarnessError(4, `inputs differ: ref [${refInputs}] vs cand [${candInputs}]`);
  }
  for (const name of ref.outputNames) {
    if (!cand.outputNames.includes(name)) {
      throw new HarnessError(4, `output '${name}' of the reference is missing from the candidate`);
    }
  }

  const rng = feeds.makeRng(opts.seed);
  const buildOpts = { specEntry, inputsDir: opts.inputsDir, inputFiles: opts.inputFiles };
  const first = feeds.buildInputs(ref.inputMetadata, buildOpts, rng);
  const fileSamples = feeds.sampleCount(first);
  const stats = Object.fromEntries(ref.outputNames.map((n) => [n, new OutputStats(n)]));
  const keep = Boolean(opts.saveOutputs || opts.labels);

  const runBoth = async (inputs, begin, end) => {
    const refOut = await feeds.runSession(ref, refFile, feeds.makeFeeds(ref.inputMetadata, inputs,
      begin, end));
    const candOut = await feeds.runSession(cand, candFile,
      feeds.makeFeeds(cand.inputMetadata, inputs, begin, end));
    for (const name of ref.outputNames) {
      if (!refOut[name].data || !candOut[name].data) {
        throw new HarnessError(1, `output '${name}' is not a tensor`);
      }
      stats[name].add(refOut[name], candOut[name], keep);
    }
  };

  let inputDesc;
  let samples;
  if (fileSamples !== null) {
    samples = fileSamples;
    const batch = feeds.batchSize(ref.inputMetadata, first, fileSamples, opts.batch);
    for (let b = 0; b < fileSamples; b += batch) {
      await runBoth(first, b, Math.min(fileSamples, b + batch));
    }
    inputDesc = `${fileSamples} samples from files, batch ${batch}`;
  } else {
    samples = opts.samples;
    await runBoth(first, 0, 0);
    for (let k = 1; k < opts.samples; k++) {
      await runBoth(feeds.buildInputs(ref.inputMetadata, buildOpts, rng), 0, 0);
    }
    inputDesc = `${opts.samples} random sample(s), seed ${opts.seed}`;
  }

  const outputs = {};
  for (const name of ref.outputNames) outputs[name] = stats[name].result();

  let accuracy = null;
  if (opts.labels) {
    const labelOutput = opts.labelOutput || ref.outputNames[0];
    if (!stats[labelOutput]) throw new HarnessError(1, `--label-output: no output '${labelOutput}'`);
    let labels;
    try {
      labels = npy.load(opts.labels);
    } catch (err) {
      throw new HarnessError(1, `${opts.labels}: ${feeds.oneLine(err)}`);
    }
    const acc = (chunks) => {
      let right = 0;
      let rows = 0;
      for (const c of chunks) {
        const width = c.dims[c.dims.length - 1];
        const arg = argmaxRows(feeds.toFloat64(c.type, c.data), width);
        for (let r = 0; r < arg.length; r++) {
          if (rows + r < labels.data.length && arg[r] === Number(labels.data[rows + r])) right++;
        }
        rows += arg.length;
      }
      if (rows !== labels.data.length) {
        throw new HarnessError(1, `${opts.labels} has ${labels.data.length} labels, ` +
          `output '${labelOutput}' has ${rows} rows`);
      }
      return right / rows;
    };
    const refAcc = acc(stats[labelOutput].ref);
    const candAcc = acc(stats[labelOutput].cand);
    accuracy = {
      output: labelOutput,
      labels: opts.labels,
      ref: refAcc,
      cand: candAcc,
      drop_points: (refAcc - candAcc) * 100,
    };
  }

  if (opts.saveOutputs) {
    fs.mkdirSync(opts.saveOutputs, { recursive: true });
    for (const name of ref.outputNames) {
      npy.save(path.join(opts.saveOutputs, `ref_${safeName(name)}.npy`), concatForSave(stats[name].ref));
      npy.save(path.join(opts.saveOutputs, `cand_${safeName(name)}.npy`),
        concatForSave(stats[name].cand));
    }
  }

  const failures = [];
  for (const [name, r] of Object.entries(outputs)) {
    if (opts.requireIdentical && !r.identical) failures.push(`output '${name}' is not bit-identical`);
    if (opts.minCosine !== null && !(r.cosine >= opts.minCosine)) {
      failures.push(`output '${name}' cosine ${fmt(r.cosine, 6)} < ${opts.minCosine}`);
    }
    if (opts.minSnr !== null && !(r.snr_db >= opts.minSnr)) {
      failures.push(`output '${name}' snr ${fmt(r.snr_db, 2)} dB < ${opts.minSnr}`);
    }
    if (opts.minTop1 !== null && r.top1_agreement !== null && !(r.top1_agreement >= opts.minTop1)) {
      failures.push(`output '${name}' top-1 agreement ${fmt(r.top1_agreement, 4)} < ${opts.minTop1}`);
    }
  }
  if (opts.maxAccuracyDrop !== null) {
    if (!accuracy) failures.push('--max-accuracy-drop needs --labels');
    else if (!(accuracy.drop_points <= opts.maxAccuracyDrop)) {
      failures.push(`accuracy drop ${fmt(accuracy.drop_points, 2)} points > ${opts.maxAccuracyDrop}`);
    }
  }

  if (opts.json) {
    const report = {
      ref: refFile,
      cand: candFile,
      samples,
      inputs: inputDesc,
      outputs,
      accuracy,
      gates_passed: failures.length === 0,
    };
    process.stdout.write(`${JSON.stringify(report, jsonReplacer)}\n`);
  } else {
    const lines = [`ref:  ${refFile}`, `cand: ${candFile}`, `inputs: ${inputDesc}`];
    for (const [name, r] of Object.entries(outputs)) {
      lines.push(`output ${name} [${stats[name].shape}]: cosine ${fmt(r.cosine, 6)}` +
        `  snr_db ${fmt(r.snr_db, 2)}  max_abs_err ${r.max_abs_err.toPrecision(4)}` +
        `  top1_agreement ${fmt(r.top1_agreement, 4)}  identical: ${r.identical}`);
    }
    if (accuracy) {
      lines.push(`accuracy (${accuracy.output} vs ${accuracy.labels}): ref ${fmt(accuracy.ref, 4)}` +
        `  cand ${fmt(accuracy.cand, 4)}  drop ${fmt(accuracy.drop_points, 2)} points`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (failures.length) throw new HarnessError(4, `gate failed: ${failures.join('; ')}`);
}

main().catch((err) => {
  const code = err instanceof HarnessError ? err.code : 2;
  process.stderr.write(`ort_compare: ${err instanceof HarnessError ? err.message : feeds.oneLine(err)}\n`);
  process.exit(code);
});
