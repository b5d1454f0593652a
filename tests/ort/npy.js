'use strict';
// Reader and writer for NumPy .npy files (format 1.0-3.0, little-endian, C order).
// Arrays are { dtype, shape, data } where dtype is an onnxruntime tensor type name and data the
// matching typed array: float16 stays as raw Uint16Array bits, int64 as BigInt64Array,
// bool as Uint8Array of 0/1.

const fs = require('fs');

const kMagic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

// numpy descr (without byte order) <-> onnxruntime type name and typed array.
const kDtypes = [
  { descr: 'f4', type: 'float32', Array: Float32Array },
  { descr: 'f2', type: 'float16', Array: Uint16Array },
  { descr: 'f8', type: 'float64', Array: Float64Array },
  { descr: 'i8', type: 'int64', Array: BigInt64Array },
  { descr: 'i4', type: 'int32', Array: Int32Array },
  { descr: 'i1', type: 'int8', Array: Int8Array },
  { descr: 'u1', type: 'uint8', Array: Uint8Array },
  { descr: 'b1', type: 'bool', Array: Uint8Array },
];

function dtypeByDescr(descr) {
  const m = /^([<>|=]?)([a-z]\d+)$/.exec(descr);
  const entry = m && kDtypes.find((d) => d.descr === m[2]);
  if (!entry) throw new Error(`unsupported npy dtype '${descr}'`);
  if (m[1] === '>' && entry.Array.BYTES_PER_ELEMENT > 1) {
    throw new Error(`big-endian npy dtype '${descr}' is not supported`);
  }
  return entry;
}

function dtypeByType(type) {
  const entry = kDtypes.find((d) => d.type === type);
  if (!entry) throw new Error(`cannot write npy for tensor type '${type}'`);
  return entry;
}

function parseHeader(text) {
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !order || !shape) throw new Error(`bad npy header: ${text.trim()}`);
  if (order[1] === 'True') throw new Error('fortran-order npy arrays are not supported');
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  return { descr: descr[1], shape: dims };
}

/** Parse a .npy file held in a Buffer. */
function decode(buf) {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(kMagic)) throw new Error('not an npy file');
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const { descr, shape } = parseHeader(buf.toString('latin1', major === 1 ? 10 : 12, start));
  const dt = dtypeByDescr(descr);
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = count * dt.Array.BYTES_PER_ELEMENT;
  if (buf.length - start < bytes) {
    throw new Error(`npy data is ${buf.length - start} bytes, shape needs ${bytes}`);
  }
  // Copy so the typed array is aligned whatever the header length.
  const data = new dt.Array(count);
  Buffer.from(data.buffer).set(buf.subarray(start, start + bytes));
  return { dtype: dt.type, shape, data };
}

/** Serialise { dtype, shape, data } to a .npy (format 1.0) Buffer. */
function encode(arr) {
  const dt = dtypeByType(arr.dtype);
  const endian = dt.Array.BYTES_PER_ELEMENT === 1 ? '|' : '<';
  const shapeText = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${endian}${dt.descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Header plus the 10-byte preamble and newline pads to a multiple of 64 bytes.
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  kMagic.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = arr.data instanceof dt.Array ? arr.data : dt.Array.from(arr.data);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function load(path) {
  return decode(fs.readFileSync(path));
}

function save(path, arr) {
  fs.writeFileSync(path, encode(arr));
}

module.exports = { decode, encode, load, save };
