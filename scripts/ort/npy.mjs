// .npy read/write in plain JavaScript (no dependencies), for run.mjs.
//
// Arrays are { dtype, shape, data } where dtype is an onnxruntime tensor type
// and data the typed array onnxruntime-node uses for it:
//   float32 Float32Array   float64 Float64Array   float16 Uint16Array (bits)
//   int8    Int8Array      uint8   Uint8Array     int16   Int16Array
//   uint16  Uint16Array    int32   Int32Array     uint32  Uint32Array
//   int64   BigInt64Array  uint64  BigUint64Array bool    Uint8Array (0/1)
// Reading accepts format versions 1.0-3.0, any byte order, C or Fortran order
// (Fortran is transposed to C). Writing produces what numpy >= 1.24's np.save
// writes: version 1.0 (2.0 for huge headers), little-endian, C order, header
// padded to 64 bytes.

import { readFileSync, writeFileSync } from 'node:fs';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

// kind+size (numpy descr without byte order) → [ort dtype, TypedArray]
const BY_DESCR = {
  f4: ['float32', Float32Array], f8: ['float64', Float64Array], f2: ['float16', Uint16Array],
  i1: ['int8', Int8Array], u1: ['uint8', Uint8Array], i2: ['int16', Int16Array],
  u2: ['uint16', Uint16Array], i4: ['int32', Int32Array], u4: ['uint32', Uint32Array],
  i8: ['int64', BigInt64Array], u8: ['uint64', BigUint64Array], b1: ['bool', Uint8Array],
};
const DESCR_OF = Object.fromEntries(Object.entries(BY_DESCR).map(([d, [t]]) => [t, d]));

/** NpyError is a one-line error about a .npy file. */
export class NpyError extends Error {}

/** Parses the Python dict literal of a .npy header (the subset numpy writes). */
function parseHeaderDict(s) {
  let i = 0;
  const ws = () => { while (i < s.length && /\s/.test(s[i])) i++; };
  const fail = (what) => { throw new NpyError(`bad header (${what} at offset ${i}): ${JSON.stringify(s.trim().slice(0, 120))}`); };
  const value = () => {
    ws();
    const c = s[i];
    if (c === "'" || c === '"') {
      const end = s.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const v = s.slice(i + 1, end);
      i = end + 1;
      return v;
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items = [];
      for (;;) {
        ws();
        if (s[i] === close) { i++; break; }
        items.push(value());
        ws();
        if (s[i] === ',') i++;
        else if (s[i] !== close) fail('expected , or ' + close);
      }
      return items;
    }
    const m = /^(True|False|-?\d+L?)/.exec(s.slice(i));
    if (!m) fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    return Number(m[0].replace('L', ''));
  };
  ws();
  if (s[i] !== '{') fail('expected {');
  i++;
  const d = {};
  for (;;) {
    ws();
    if (s[i] === '}') { i++; break; }
    const k = value();
    if (typeof k !== 'string') fail('expected key');
    ws();
    if (s[i] !== ':') fail('expected :');
    i++;
    d[k] = value();
    ws();
    if (s[i] === ',') i++;
    else if (s[i] !== '}') fail('expected , or }');
  }
  return d;
}

/** Decodes a .npy file held in buf (a Buffer). name is used in errors. */
export function decodeNpy(buf, name = 'npy') {
  const err = (msg) => new NpyError(`${name}: ${msg}`);
  if (buf.length < 10) throw err(`truncated: ${buf.length} bytes is too short for a .npy file`);
  if (!buf.subarray(0, 6).equals(MAGIC)) throw err('not a .npy file (bad magic)');
  const major = buf[6];
  let hlen, off;
  if (major === 1) { hlen = buf.readUInt16LE(8); off = 10; }
  else if (major === 2 || major === 3) {
    if (buf.length < 12) throw err('truncated preamble');
    hlen = buf.readUInt32LE(8); off = 12;
  } else throw err(`unsupported .npy format version ${major}.${buf[7]}`);
  if (off + hlen > buf.length) throw err(`truncated: header length ${hlen} exceeds file size ${buf.length}`);
  const text = buf.toString(major === 3 ? 'utf8' : 'latin1', off, off + hlen);
  let d;
  try { d = parseHeaderDict(text); } catch (e) { throw err(e.message); }
  const { descr, fortran_order: fortran, shape } = d;
  if (typeof descr !== 'string') throw err(`unsupported dtype ${JSON.stringify(descr)}`);
  const m = /^([<>|=]?)([a-z]\d+)$/.exec(descr);
  const ent = m && BY_DESCR[m[2]];
  if (!ent) throw err(`unsupported dtype ${descr}`);
  const [dtype, TA] = ent;
  if (typeof fortran !== 'boolean') throw err('bad header: fortran_order missing');
  if (!Array.isArray(shape) || !shape.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    throw err(`bad shape ${JSON.stringify(shape)}`);
  }
  let n = 1;
  for (const x of shape) {
    n *= x;
    if (!Number.isSafeInteger(n)) throw err(`shape [${shape}]: element count overflows`);
  }
  const nbytes = n * TA.BYTES_PER_ELEMENT;
  const dataOff = off + hlen;
  const avail = buf.length - dataOff;
  if (nbytes > avail) throw err(`truncated: shape [${shape}] of ${dtype} needs ${nbytes} data bytes, only ${avail} present`);
  if (nbytes < avail) throw err(`corrupt: ${avail - nbytes} trailing bytes after array data`);
  // Copy into a fresh, aligned buffer.
  const bytes = new Uint8Array(nbytes);
  bytes.set(buf.subarray(dataOff, dataOff + nbytes));
  if (m[1] === '>' && TA.BYTES_PER_ELEMENT > 1) swapBytes(bytes, TA.BYTES_PER_ELEMENT);
  let data = new TA(bytes.buffer, 0, n);
  if (dtype === 'bool') data = data.map((v) => (v ? 1 : 0));
  if (fortran && shape.length > 1) data = fortranToC(data, shape);
  return { dtype, shape, data };
}

function swapBytes(b, size) {
  for (let i = 0; i < b.length; i += size) {
    for (let j = 0; j < size / 2; j++) {
      const t = b[i + j]; b[i + j] = b[i + size - 1 - j]; b[i + size - 1 - j] = t;
    }
  }
}

function fortranToC(src, shape) {
  const dst = new src.constructor(src.length);
  if (src.length === 0) return dst;
  const nd = shape.length;
  const stride = new Array(nd);
  let s = 1;
  for (let k = 0; k < nd; k++) { stride[k] = s; s *= shape[k]; }
  const idx = new Array(nd).fill(0);
  let off = 0;
  for (let i = 0; i < dst.length; i++) {
    dst[i] = src[off];
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++; off += stride[k];
      if (idx[k] < shape[k]) break;
      off -= stride[k] * shape[k]; idx[k] = 0;
    }
  }
  return dst;
}

/** fsError describes a failed fs call without repeating the path. */
export function fsError(e) {
  const known = { ENOENT: 'no such file or directory', EISDIR: 'is a directory', EACCES: 'permission denied' };
  return known[e.code] ?? String(e.message).split('\n')[0];
}

/** Reads the .npy file at path. */
export function readNpy(path) {
  let buf;
  try { buf = readFileSync(path); } catch (e) { throw new NpyError(`${path}: ${fsError(e)}`); }
  return decodeNpy(buf, path);
}

function shapeRepr(shape) {
  if (shape.length === 0) return '()';
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** Encodes {dtype, shape, data} as .npy bytes identical to numpy's np.save. */
export function encodeNpy({ dtype, shape, data }) {
  const code = DESCR_OF[dtype];
  if (!code) throw new NpyError(`cannot write dtype ${dtype} to .npy`);
  const size = BY_DESCR[code][1].BYTES_PER_ELEMENT;
  const descr = (size === 1 ? '|' : '<') + code;
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new NpyError(`shape [${shape}] wants ${n} elements, data has ${data.length}`);
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, 21 - String(shape[0]).length));
  const hlen = dict.length + 1;
  let pre = 10;
  let pad = 64 - ((pre + hlen) % 64);
  if (hlen + pad > 0xffff) { pre = 12; pad = 64 - ((pre + hlen) % 64); }
  const head = Buffer.alloc(pre + hlen + pad);
  MAGIC.copy(head, 0);
  head[6] = pre === 10 ? 1 : 2;
  head[7] = 0;
  if (pre === 10) head.writeUInt16LE(hlen + pad, 8); else head.writeUInt32LE(hlen + pad, 8);
  head.write(dict + ' '.repeat(pad) + '\n', pre, 'latin1');
  let body;
  if (dtype === 'bool') body = Buffer.from(Uint8Array.from(data, (v) => (v ? 1 : 0)));
  else body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, body]);
}

/** Writes {dtype, shape, data} to path. */
export function writeNpy(path, arr) {
  writeFileSync(path, encodeNpy(arr));
}
