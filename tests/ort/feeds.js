'use strict';
// Shared by ort_compare.js and ort_bench.js: session options, the input spec file, seeded random
// inputs, .npy inputs, and conversions between onnxruntime tensors and float64 arrays.

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const npy = require('./npy');

const kTypedArrays = {
  float32: Float32Array,
  float16: Uint16Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

/** A failure with the exit code the CLI should use (1 usage/input, 2 ONNX Runtime). */
class HarnessError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function oneLine(err) {
  return String(err && err.message ? err.message : err).replace(/\s+/g, ' ').trim();
}

function sessionOptions(threads) {
  // intraOpNumThreads is the per-op thread pool; with 'sequential' no inter-op pool is used.
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
}

async function openSession(file, threads) {
  try {
    return await ort.InferenceSession.create(file, sessionOptions(threads));
  } catch (err) {
    throw new HarnessError(2, `${file}: failed to load: ${oneLine(err)}`);
  }
}

async function runSession(session, file, feeds) {
  try {
    return await session.run(feeds);
  } catch (err) {
    throw new HarnessError(2, `${file}: failed to run: ${oneLine(err)}`);
  }
}

/** The spec entry for the first of `files` whose basename the spec lists, with its directory. */
function loadSpecEntry(specPath, files) {
  if (!specPath) return null;
  let spec;
  try {
    spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  } catch (err) {
    throw new HarnessError(1, `${specPath}: ${oneLine(err)}`);
  }
  for (const file of files) {
    const entry = (spec.models || {})[path.basename(file)];
    if (entry) return { name: path.basename(file), dir: path.dirname(specPath), ...entry };
  }
  return null;
}

// mulberry32 + Box-Muller: tiny, seedable and the same on every platform.
function makeRng(seed) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare = null;
  const normal = () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const u1 = 1 - uniform();
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  return { uniform, normal };
}

// float16 bits <-> number, round to nearest even.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function floatToHalf(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half += 1;
  return sign | half;
}

/** Any typed array of tensor `type` -> Float64Array of its values. */
function toFloat64(type, data) {
  const out = new Float64Array(data.length);
  if (type === 'float16') {
    for (let i = 0; i < data.length; i++) out[i] = halfToFloat(data[i]);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  }
  return out;
}

/** Float64Array (or any numeric array) -> typed array for tensor `type`. */
function fromFloat64(type, values) {
  const Arr = kTypedArrays[type];
  if (!Arr) throw new HarnessError(1, `inputs of type '${type}' are not supported`);
  const out = new Arr(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (type === 'float16') out[i] = floatToHalf(v);
    else if (type === 'int64') out[i] = BigInt(Math.round(v));
    else if (type === 'uint64') out[i] = BigInt(Math.max(0, Math.round(v)));
    else if (type === 'bool') out[i] = v ? 1 : 0;
    else out[i] = v;
  }
  return out;
}

function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

function metaShape(meta) {
  // Symbolic (string) and unknown (negative or 0) dims become 1.
  return (meta.shape || []).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
}

/**
 * The canonical inputs every model gets, as { name: { shape, values: Float64Array|BigInt64Array,
 * fromFile } }. Files (--input/--inputs) hold a leading samples axis; everything else is built
 * per sample from the spec, else from the model's metadata, seeded N(0,1) for floats.
 */
function buildInputs(inputMeta, opts, rng) {
  const { specEntry, inputsDir, inputFiles } = opts;
  const specInputs = (specEntry && specEntry.inputs) || {};
  const result = {};
  for (const meta of inputMeta) {
    const name = meta.name;
    let file = inputFiles[name];
    if (!file && inputsDir && fs.existsSync(path.join(inputsDir, `${name}.npy`))) {
      file = path.join(inputsDir, `${name}.npy`);
    }
    if (file) {
      let arr;
      try {
        arr = npy.load(file);
      } catch (err) {
        throw new HarnessError(1, `${file}: ${oneLine(err)}`);
      }
      const values = arr.dtype === 'float16' ? toFloat64('float16', arr.data) : arr.data;
      result[name] = { shape: arr.shape, values, fromFile: file };
      continue;
    }
    const spec = specInputs[name];
    const type = (spec && spec.dtype) || meta.type;
    const shape = spec && spec.shape ? spec.shape.slice() : metaShape(meta);
    const count = product(shape);
    const values = new Float64Array(count);
    if (spec && spec.value !== undefined) {
      values.fill(Number(spec.value));
    } else if (type.startsWith('float')) {
      for (let i = 0; i < count; i++) values[i] = rng.normal();
    } else {
      throw new HarnessError(1, `input '${name}' is ${type}: random data is only made for floats; ` +
        'give it a "value" in the --spec entry or a .npy file');
    }
    result[name] = { shape, values, fromFile: null };
  }
  for (const name of Object.keys(inputFiles)) {
    if (!inputMeta.some((m) => m.name === name)) {
      throw new HarnessError(1, `--input ${name}: the model has no input named '${name}'`);
    }
  }
  return result;
}

/** Number of samples along the leading axis of the file inputs (1 when there are none). */
function sampleCount(inputs) {
  let n = null;
  for (const [name, inp] of Object.entries(inputs)) {
    if (!inp.fromFile) continue;
    if (inp.shape.length === 0) throw new HarnessError(1, `${inp.fromFile}: a scalar has no samples axis`);
    if (n !== null && inp.shape[0] !== n) {
      throw new HarnessError(1, `input '${name}' has ${inp.shape[0]} samples, another has ${n}`);
    }
    n = inp.shape[0];
  }
  return n;
}

/** Feeds for samples [begin, end) of the file inputs, in the types `inputMeta` asks for. */
function makeFeeds(inputMeta, inputs, begin, end) {
  const feeds = {};
  for (const meta of inputMeta) {
    const inp = inputs[meta.name];
    let shape = inp.shape;
    let values = inp.values;
    if (inp.fromFile) {
      const row = product(inp.shape.slice(1));
      shape = [end - begin, ...inp.shape.slice(1)];
      values = inp.values.subarray(begin * row, end * row);
    }
    const type = meta.type;
    const data = fromFloat64(type, values);
    try {
      feeds[meta.name] = new ort.Tensor(type, data, shape);
    } catch (err) {
      throw new HarnessError(1, `input '${meta.name}': ${oneLine(err)}`);
    }
  }
  return feeds;
}

/** Samples per run: the model's fixed leading dim if it has one, else `batch` (0 = all). */
function batchSize(inputMeta, inputs, total, batch) {
  let size = batch > 0 ? batch : total;
  for (const meta of inputMeta) {
    if (!inputs[meta.name].fromFile) continue;
    const d = (meta.shape || [])[0];
    if (typeof d === 'number' && d > 0) size = Math.min(size, d);
  }
  return Math.max(1, size);
}

module.exports = {
  HarnessError,
  oneLine,
  sessionOptions,
  openSession,
  runSession,
  loadSpecEntry,
  makeRng,
  halfToFloat,
  floatToHalf,
  toFloat64,
  buildInputs,
  sampleCount,
  makeFeeds,
  batchSize,
};
