#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU) as pqvc's test oracle and benchmark peer.
//
//   node scripts/ort/run.mjs run   --model M.onnx --input NAME=path.npy [...] --outdir DIR [--threads N] [--opt all|extended|basic|disable]
//   node scripts/ort/run.mjs bench --model M.onnx --input NAME=path.npy [...] [--threads N] [--warmup W] [--runs R] [--opt ...]
//   node scripts/ort/run.mjs serve
//
// run    runs the model once, writes each output to DIR/<output name>.npy and
//        prints one JSON line: {"ok":true,"outputs":[{"name","dtype","shape","path"}],...}.
// bench  runs W untimed then R timed runs and prints one JSON line with
//        median_ms, p10_ms, p90_ms, min_ms, max_ms, mean_ms, threads, runs, ...
// serve  reads newline-delimited JSON requests on stdin and answers each with
//        one JSON line on stdout, so that a caller keeps one node process
//        (start-up, mostly loading the ORT library, is slow). Requests:
//          {"id":any,"cmd":"run","model":"M.onnx","inputs":{"NAME":"path.npy"},"outdir":"DIR","threads":N,"opt":"all"}
//          {"id":any,"cmd":"bench","model":...,"inputs":...,"threads":N,"warmup":W,"runs":R,"opt":"all"}
//          {"id":any,"cmd":"ping"}   {"id":any,"cmd":"quit"}
//        Answers echo "id" and carry "ok":true or "ok":false,"error":"one line".
//        Sessions are cached per (model file, mtime, threads, opt); the
//        least recently used is dropped past 4 sessions or past 256 MB of
//        model files ($PQVC_ORT_CACHE_BYTES), before the next is created.
//
// Session options: intraOpNumThreads=N (default 1), interOpNumThreads=1,
// executionMode sequential, graphOptimizationLevel from --opt (default all).
// onnxruntime-node is loaded from the directory in $PQVC_ORT_DIR (one with
// node_modules/onnxruntime-node) if set, else from the repository's
// node_modules. Errors are one line on stderr (run/bench), exit status 1.

import { createRequire } from 'node:module';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fsError, readNpy, writeNpy } from './npy.mjs';

const t0 = process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;

/** UsageError is a bad command line or request. */
class UsageError extends Error {}

/** oneLine squeezes an error (ORT messages span lines) onto one line. */
function oneLine(e) {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s*\n\s*/g, ' | ').trim();
}

function loadOrt() {
  const req = createRequire(import.meta.url);
  const dir = process.env.PQVC_ORT_DIR;
  let where = 'onnxruntime-node';
  try {
    if (dir) where = req.resolve('onnxruntime-node', { paths: [resolve(dir)] });
    return req(where);
  } catch (e) {
    throw new Error(`cannot load onnxruntime-node${dir ? ` from PQVC_ORT_DIR=${dir}` : ''} (run "npm ci --ignore-scripts" at the repository root): ${oneLine(e)}`);
  }
}

let ort;
try {
  ort = loadOrt();
} catch (e) {
  process.stderr.write(`run.mjs: error: ${oneLine(e)}\n`);
  process.exit(1);
}
const loadMs = ms(t0, process.hrtime.bigint());

const OPT = { all: 'all', extended: 'extended', basic: 'basic', disable: 'disabled', disabled: 'disabled' };

function intArg(v, name, min) {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** normalize checks a request (from argv or serve) and fills defaults. */
function normalize(req) {
  const cmd = req.cmd;
  if (typeof req.model !== 'string' || req.model === '') throw new UsageError(`${cmd}: model is required`);
  const inputs = req.inputs ?? {};
  if (typeof inputs !== 'object' || Array.isArray(inputs)) throw new UsageError(`${cmd}: inputs must map input names to .npy paths`);
  for (const [k, v] of Object.entries(inputs)) {
    if (typeof v !== 'string') throw new UsageError(`${cmd}: input ${k}: path must be a string`);
  }
  const opt = OPT[req.opt ?? 'all'];
  if (!opt) throw new UsageError(`${cmd}: opt must be all, extended, basic or disable, got ${JSON.stringify(req.opt)}`);
  const out = { cmd, model: resolve(req.model), inputs, opt, threads: intArg(req.threads ?? 1, 'threads', 0) };
  if (cmd === 'run') {
    if (typeof req.outdir !== 'string' || req.outdir === '') throw new UsageError('run: outdir is required');
    out.outdir = req.outdir;
  } else {
    out.warmup = intArg(req.warmup ?? 3, 'warmup', 0);
    out.runs = intArg(req.runs ?? 20, 'runs', 1);
  }
  return out;
}

const cache = new Map(); // key → {s: session, bytes: model file size}, in LRU order (oldest first)
const CACHE_MAX = 4;
// A session holds about twice its model's bytes (initializers and
// prepacked weights), so the cache is bounded by bytes too: four cached
// DeiT-base sessions would hold 2.6 GB while a sweep times other variants.
const CACHE_MAX_BYTES = Number(process.env.PQVC_ORT_CACHE_BYTES ?? 256 * 1024 * 1024);
let cacheBytes = 0;

async function evictFor(bytes) {
  while (cache.size > 0 && (cache.size >= CACHE_MAX || cacheBytes + bytes > CACHE_MAX_BYTES)) {
    const [oldKey, old] = cache.entries().next().value;
    cache.delete(oldKey);
    cacheBytes -= old.bytes;
    await old.s.release?.();
  }
}

async function getSession(r) {
  let st;
  try { st = statSync(r.model); } catch (e) { throw new Error(`model ${r.model}: ${fsError(e)}`); }
  const key = JSON.stringify([r.model, st.mtimeMs, st.size, r.threads, r.opt]);
  let ent = cache.get(key);
  let createMs = 0;
  if (ent) {
    cache.delete(key);
    cacheBytes -= ent.bytes;
  } else {
    // Make room before creating the session, so the evicted ones are
    // released before the new one allocates.
    await evictFor(st.size);
    let s;
    const c0 = process.hrtime.bigint();
    try {
      s = await ort.InferenceSession.create(r.model, {
        intraOpNumThreads: r.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: r.opt,
        executionMode: 'sequential',
        logSeverityLevel: 3,
      });
    } catch (e) {
      throw new Error(`model ${r.model}: cannot create session: ${oneLine(e)}`);
    }
    createMs = ms(c0, process.hrtime.bigint());
    ent = { s, bytes: st.size };
  }
  cache.set(key, ent);
  cacheBytes += ent.bytes;
  return { session: ent.s, createMs };
}

function feeds(session, r) {
  const want = session.inputNames;
  const have = Object.keys(r.inputs);
  const missing = want.filter((n) => !have.includes(n));
  const extra = have.filter((n) => !want.includes(n));
  if (missing.length || extra.length) {
    throw new UsageError(`model ${r.model} takes inputs [${want}]` +
      (missing.length ? `; missing [${missing}]` : '') + (extra.length ? `; unknown [${extra}]` : ''));
  }
  const meta = Object.fromEntries((session.inputMetadata ?? []).map((m) => [m.name, m]));
  const out = {};
  for (const name of want) {
    const a = readNpy(r.inputs[name]);
    const m = meta[name];
    if (m?.isTensor && m.type && m.type !== a.dtype) {
      throw new UsageError(`input ${name}: model wants ${m.type}, ${r.inputs[name]} holds ${a.dtype}`);
    }
    out[name] = new ort.Tensor(a.dtype, a.data, a.shape);
  }
  return out;
}

async function doRun(r) {
  const { session, createMs } = await getSession(r);
  const f = feeds(session, r);
  const r0 = process.hrtime.bigint();
  let res;
  try { res = await session.run(f); } catch (e) { throw new Error(`model ${r.model}: run failed: ${oneLine(e)}`); }
  const runMs = ms(r0, process.hrtime.bigint());
  mkdirSync(r.outdir, { recursive: true });
  const outputs = [];
  for (const name of session.outputNames) {
    const t = res[name];
    if (!t || !t.data || typeof t.data === 'string' || Array.isArray(t.data)) {
      throw new Error(`output ${name}: type ${t?.type} cannot be written to .npy`);
    }
    const shape = Array.from(t.dims, Number);
    const path = join(r.outdir, `${name.replace(/[/\\]/g, '_')}.npy`);
    writeNpy(path, { dtype: t.type, shape, data: t.data });
    outputs.push({ name, dtype: t.type, shape, path });
  }
  return { outputs, run_ms: runMs, session_ms: createMs, threads: r.threads, opt: r.opt };
}

function quantile(sorted, q) { // linear interpolation, like numpy's default
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function doBench(r) {
  const { session, createMs } = await getSession(r);
  const f = feeds(session, r);
  const once = async () => {
    try { await session.run(f); } catch (e) { throw new Error(`model ${r.model}: run failed: ${oneLine(e)}`); }
  };
  for (let i = 0; i < r.warmup; i++) await once();
  const times = [];
  for (let i = 0; i < r.runs; i++) {
    const b0 = process.hrtime.bigint();
    await once();
    times.push(ms(b0, process.hrtime.bigint()));
  }
  const s = [...times].sort((a, b) => a - b);
  const round = (x) => Math.round(x * 1e4) / 1e4;
  return {
    median_ms: round(quantile(s, 0.5)), p10_ms: round(quantile(s, 0.1)), p90_ms: round(quantile(s, 0.9)),
    min_ms: round(s[0]), max_ms: round(s[s.length - 1]), mean_ms: round(s.reduce((a, b) => a + b, 0) / s.length),
    threads: r.threads, runs: r.runs, warmup: r.warmup, opt: r.opt, session_ms: round(createMs),
  };
}

async function handle(req) {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new UsageError('request must be a JSON object');
  switch (req.cmd) {
    case 'ping':
      return { ort: ort.env?.versions?.node ?? null, node: process.versions.node, load_ms: loadMs };
    case 'run':
      return doRun(normalize(req));
    case 'bench':
      return doBench(normalize(req));
    default:
      throw new UsageError(`unknown cmd ${JSON.stringify(req.cmd)} (want run, bench, ping or quit)`);
  }
}

function parseArgv(argv) {
  const [cmd, ...rest] = argv;
  const req = { cmd, inputs: {} };
  const names = { '--model': 'model', '--outdir': 'outdir', '--threads': 'threads', '--warmup': 'warmup', '--runs': 'runs', '--opt': 'opt' };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') && !a.startsWith('--input=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const next = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= rest.length) throw new UsageError(`${flag} needs a value`);
      return rest[++i];
    };
    if (flag === '--input' || flag.startsWith('--input=')) {
      const v = flag.startsWith('--input=') ? flag.slice(8) : next();
      const eq = v.indexOf('=');
      if (eq <= 0) throw new UsageError(`--input wants NAME=path.npy, got ${JSON.stringify(v)}`);
      req.inputs[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (names[flag]) {
      req[names[flag]] = next();
    } else if (flag === '-h' || flag === '--help') {
      req.cmd = 'help';
    } else {
      throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
    }
  }
  return req;
}

const USAGE = `usage:
  node scripts/ort/run.mjs run   --model M.onnx --input NAME=path.npy [...] --outdir DIR [--threads N] [--opt all|extended|basic|disable]
  node scripts/ort/run.mjs bench --model M.onnx --input NAME=path.npy [...] [--threads N] [--warmup W] [--runs R] [--opt ...]
  node scripts/ort/run.mjs serve   (newline-delimited JSON requests on stdin, one JSON answer line each)`;

async function serve() {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let req, id = null;
    let ans;
    try {
      try { req = JSON.parse(line); } catch (e) { throw new UsageError(`bad JSON request: ${oneLine(e)}`); }
      id = req?.id ?? null;
      if (req?.cmd === 'quit') {
        process.stdout.write(JSON.stringify({ id, ok: true }) + '\n');
        break;
      }
      ans = { id, ok: true, ...(await handle(req)) };
    } catch (e) {
      ans = { id, ok: false, error: oneLine(e) };
    }
    process.stdout.write(JSON.stringify(ans) + '\n');
  }
  for (const ent of cache.values()) await ent.s.release?.();
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === 'serve') return serve();
  const req = parseArgv(argv);
  if (req.cmd === 'help' || req.cmd === undefined) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (req.cmd !== 'run' && req.cmd !== 'bench') throw new UsageError(`unknown mode ${JSON.stringify(req.cmd)}\n${USAGE}`);
  const res = await handle(req);
  process.stdout.write(JSON.stringify({ ok: true, ...res }) + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`run.mjs: error: ${e instanceof UsageError ? e.message.split('\n')[0] : oneLine(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
