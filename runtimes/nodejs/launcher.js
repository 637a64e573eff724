// ActionLoop launcher for Node.js actions (protocol: runtimes/README.md).
//
// Started by the actionloop proxy before any code arrives, so that /init only pays for loading
// the action, not for starting node. Requests come as JSON lines on stdin, answers go as JSON
// lines on fd 3, and stdout/stderr belong to the action.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const vm = require('vm');
const Module = require('module');
const { pathToFileURL } = require('url');

const MISSING_ENTRY = 'zipped actions must contain either package.json or index.js at the root.';

// The protocol owns stdin and fd 3. When they are pipes, take private descriptors on them (they
// are close-on-exec) and put /dev/null in their place, so that neither the action nor a child
// process it spawns with inherited stdio can swallow a request or write a fake answer.
// The request end is non-blocking (net.Socket reads it); the answer end blocks, so that a large
// answer waits for the proxy to read it, instead of sleeping in a retry loop. Neither open()
// waits: the other end of each pipe is the proxy's, and open.
function takeOver(fd, flags) {
  try {
    if (!fs.fstatSync(fd).isFIFO()) return fd;
    const copy = fs.openSync(`/proc/self/fd/${fd}`, flags);
    fs.closeSync(fd);
    fs.openSync('/dev/null', flags); // the lowest free descriptor: `fd` again
    return copy;
  } catch {
    return fd; // no /proc: still works, only unprotected
  }
}
const requestsFd = takeOver(0, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
const answersFd = takeOver(3, fs.constants.O_WRONLY);

const pause = new Int32Array(new SharedArrayBuffer(4));

// Node's own globals (`fetch`, `setTimeout`...) must not pass for an action's `global.main`.
const BUILTIN_GLOBALS = new Set(Object.getOwnPropertyNames(globalThis));

// Synchronous, so that an answer is never reordered with anything else we do; the descriptor may
// be non-blocking, and then a full pipe means waiting for the proxy to read, not failing.
function send(line) {
  const data = Buffer.from(line + '\n', 'utf8');
  let done = 0;
  while (done < data.length) {
    try {
      done += fs.writeSync(answersFd, data, done);
    } catch (err) {
      if (err.code !== 'EAGAIN') {
        console.error(`actionloop: cannot write an answer (${err.message}); exiting`);
        process.exit(1);
      }
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

// Lines can be many MiB: keep the chunks and join them once, when the newline arrives.
async function* readLines(fd) {
  const input = fs.fstatSync(fd).isFIFO() || fs.fstatSync(fd).isSocket()
    ? new net.Socket({ fd, readable: true, writable: false })
    : fs.createReadStream(null, { fd, highWaterMark: 1 << 20 });
  let parts = [];
  for await (const chunk of input) {
    let start = 0;
    let newline;
    while ((newline = chunk.indexOf(10, start)) !== -1) {
      parts.push(chunk.subarray(start, newline));
      yield Buffer.concat(parts).toString('utf8');
      parts = [];
      start = newline + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length) yield Buffer.concat(parts).toString('utf8');
}

// On Linux, writes to pipes and files are synchronous, so this rarely waits; it is here so that
// the proxy, which frames the logs when the answer arrives, never sees an answer before them.
function drained(stream) {
  if (!stream.writableLength) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('drain', resolve);
    stream.once('error', resolve);
    stream.once('close', resolve);
  });
}
const flushLogs = () => Promise.all([drained(process.stdout), drained(process.stderr)]);

const isError = (value) => value instanceof Error || util.types.isNativeError(value);
const firstLine = (text) => String(text).split('\n').find((l) => l.trim()) || String(text);

function describe(value) {
  try {
    if (value instanceof LoadError) return value.message;
    return isError(value) ? String(value) : typeof value === 'string' ? value : util.inspect(value);
  } catch {
    return 'an error that cannot be described';
  }
}

class LoadError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading the action

// A name we can splice into source code as `typeof NAME`, in strict code too.
function isIdentifier(name) {
  try {
    return /^[A-Za-z_$][\w$]*$/.test(name) && !!new vm.Script(`'use strict'; typeof ${name}`);
  } catch {
    return false;
  }
}

// A top-level `function main` of a CommonJS file is local to the module wrapper; this trailer,
// appended after the user's last line (so line numbers stay right), hands it out by closure.
const SCOPE = Symbol.for('actionloop.scope');
const lookup = (name) => `typeof ${name} === 'undefined' ? undefined : ${name}`;
const WRAPPER = ['exports', 'require', 'module', '__filename', '__dirname'];

function loadCommonJS(filename, source, name) {
  const m = new Module(filename, null);
  m.filename = filename;
  m.paths = Module._nodeModulePaths(path.dirname(filename));
  Module._cache[filename] = m;
  const trailer = isIdentifier(name) && !WRAPPER.includes(name)
    ? `\n;module[Symbol.for('actionloop.scope')] = () => ${lookup(name)};\n`
    : '';
  m._compile(source + trailer, filename);
  m.loaded = true;
  return { exports: m.exports, local: m[SCOPE] ? m[SCOPE]() : undefined };
}

// An ES module's syntax error does not say where it is (node only adds that when it crashes
// on one); `node --check` prints the file, line and caret, and costs nothing when all is well.
async function importModule(filename) {
  try {
    return await import(pathToFileURL(filename).href);
  } catch (err) {
    if (err instanceof SyntaxError) {
      require('child_process').spawnSync(process.execPath, ['--check', filename], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    }
    throw err;
  }
}

// ESM's own scope is private too: the copy we import exports a getter for the name.
async function loadModule(filename, source, name) {
  let target = filename;
  if (source !== null) {
    target = filename.replace(/\.[cm]?js$/, '') + '.mjs';
    const trailer = isIdentifier(name) && name !== 'await'
      ? `\nexport function __actionloop_scope__() { return ${lookup(name)}; }\n`
      : '';
    fs.writeFileSync(target, source + trailer);
  }
  const ns = await importModule(target);
  return { exports: ns, local: ns.__actionloop_scope__ ? ns.__actionloop_scope__() : undefined };
}

// Node 20 has no automatic detection of ES module syntax in a .js file: these are the syntax
// errors that such a file gives when compiled as CommonJS.
const ESM_SYNTAX = /import statement|token 'export'|import\.meta|top level bodies of modules/;

// A single file (what the proxy writes as index.js): CommonJS unless it only parses as ESM.
// The syntax check is separate from running it, so a dependency's syntax error is not mistaken
// for the file's own and the file never runs twice.
async function loadFile(filename, name) {
  if (filename.endsWith('.mjs')) return loadModule(filename, null, name);
  const source = fs.readFileSync(filename, 'utf8');
  try {
    vm.compileFunction(source, WRAPPER, { filename });
  } catch (err) {
    if (err instanceof SyntaxError && ESM_SYNTAX.test(err.message)) {
      return loadModule(filename, source, name);
    }
    throw err;
  }
  return loadCommonJS(filename, source, name);
}

// Node's own rule: .mjs, or .js under a package.json saying "type": "module".
function isModuleFile(filename) {
  if (filename.endsWith('.mjs')) return true;
  if (filename.endsWith('.cjs') || !filename.endsWith('.js')) return false;
  for (let dir = path.dirname(filename); ; dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch (err) {
      if (err.code !== 'ENOENT') return false;
    }
    if (dir === path.dirname(dir)) return false;
  }
}

// An archive: `file.a.b` names a file (resolved like require would) and a property path in it;
// a bare name is looked up in the package's entry (package.json `main`, else index.js).
async function loadPackage(dir, main) {
  const dot = main.indexOf('.');
  const file = dot > 0 ? main.slice(0, dot) : null;
  const has = (name) => fs.existsSync(path.join(dir, name));
  if (!file && !has('package.json') && !has('index.js')) {
    throw new LoadError('locate', MISSING_ENTRY);
  }
  const wanted = file ? path.join(dir, file) : dir;
  let entry;
  try {
    entry = require.resolve(wanted);
  } catch {
    if (!fs.existsSync(wanted + '.mjs')) {
      const what = file ? `'${file}'` : 'module';
      throw new LoadError('locate', `cannot find the action's entry ${what} in the archive`);
    }
    entry = wanted + '.mjs';
  }
  const loaded = isModuleFile(entry)
    ? { exports: await importModule(entry) }
    : { exports: require(entry) };
  return { ...loaded, name: dot > 0 ? main.slice(dot + 1) : main };
}

// Inherited properties (`toString`, `call`...) are not actions.
function property(object, key) {
  if (object === null || !['object', 'function'].includes(typeof object)) return undefined;
  const value = object[key];
  return value === Object.prototype[key] || value === Function.prototype[key] ? undefined : value;
}

// Where an action may have put its function, most explicit first: a named export (also on an ES
// module's default export), the top-level binding, `global.main`, then the module itself when it
// is a function (`module.exports = fn`, `export default fn`).
function findFunction({ exports, local }, name) {
  const [head, ...rest] = name.split('.');
  const global = BUILTIN_GLOBALS.has(head) ? undefined : globalThis[head];
  const own = local === globalThis[head] ? undefined : local; // a global seen from the module
  const named = [property(exports, head), property(property(exports, 'default'), head)];
  const roots = [...named, own, global];
  for (const root of roots) {
    const found = rest.reduce(property, root);
    if (typeof found === 'function') return found;
  }
  if (rest.length === 0) {
    for (const whole of [property(exports, 'default'), exports]) {
      if (typeof whole === 'function') return whole;
    }
  }
  return undefined;
}

async function load(dir, file, main) {
  const loaded = file
    ? { ...(await loadFile(path.resolve(dir, file), main.split('.')[0])), name: main }
    : await loadPackage(dir, main);
  const fn = findFunction(loaded, loaded.name);
  if (!fn) throw new LoadError('start', `the action has no function named '${main}'`);
  return fn;
}

// `ack` is false for a standalone (`-compile`d) launcher whose proxy did not ask for one
// (no __OW_WAIT_FOR_ACK): that proxy would read the ack as the first activation's answer.
async function init({ dir, file, main, env, ack = true }) {
  try {
    for (const [key, value] of Object.entries(env || {})) process.env[key] = value;
    process.chdir(dir);
    // cwd is the real path; resolving from it makes __dirname === process.cwd() for the entry.
    const fn = await load(process.cwd(), file || null, main || 'main');
    await flushLogs();
    if (ack) send(JSON.stringify({ ok: true }));
    return fn;
  } catch (err) {
    const kind = err instanceof LoadError ? err.kind : 'start';
    console.error(isError(err) && !(err instanceof LoadError) ? err.stack : describe(err));
    await flushLogs();
    if (ack) send(JSON.stringify({ ok: false, kind, error: firstLine(describe(err)) }));
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------------------------
// Activations

// The answer of the running activation, settled at most once: by the function's outcome, or by
// an exception that escaped to the event loop from that activation's own code. Each activation
// runs in a context of its own (AsyncLocalStorage follows timers, promises and callbacks), so
// a late timer or rejection of an earlier one is only logged, never taken for this answer.
let settle = null;
let running = 0;
const { AsyncLocalStorage } = require('async_hooks');
const activation = new AsyncLocalStorage();

// `{}` for a bare `reject()`: `{"error": undefined}` would not even be an error.
const errorAnswer = (err) => ({ error: isError(err) ? String(err) : err === undefined ? {} : err });

function failure(err) {
  if (isError(err)) console.error(err.stack || String(err));
  return errorAnswer(err);
}

function stray(err, what) {
  try {
    console.error(`actionloop: ${what}:`, isError(err) ? err.stack : describe(err));
  } catch {
    // stderr itself is gone; there is nobody left to tell
  }
  if (settle && activation.getStore() === running) settle(errorAnswer(err));
}
process.on('uncaughtException', (err) => stray(err, 'uncaught exception'));
process.on('unhandledRejection', (reason) => stray(reason, 'unhandled promise rejection'));

function encode(result) {
  try {
    const line = JSON.stringify(result);
    if (line === undefined) throw new TypeError(`a ${typeof result} has no JSON form`);
    return line;
  } catch (err) {
    console.error("actionloop: the action's result could not be serialized to JSON:", err.message);
    const why = `The action's result could not be serialized to JSON: ${firstLine(err.message)}`;
    return JSON.stringify({ __actionloop_error: why });
  }
}

// The context variables the last activation set, with what they were before it.
const contextBefore = new Map();

// This activation's context, and nothing left over from the last one. A name or value that
// cannot be an environment variable (a NUL, an `=` in the name) is left out, and said so.
function setContext(request) {
  const wanted = new Map();
  for (const [key, value] of Object.entries(request)) {
    if (key === 'value') continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    wanted.set('__OW_' + key.toUpperCase(), String(text));
  }
  for (const [name, before] of contextBefore) {
    if (wanted.has(name)) continue;
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
    contextBefore.delete(name);
  }
  for (const [name, text] of wanted) {
    if (name.includes('=') || name.includes('\0') || text.includes('\0')) {
      console.error(`actionloop: ${JSON.stringify(name)} cannot be an environment variable; not set`);
      continue;
    }
    if (!contextBefore.has(name)) contextBefore.set(name, process.env[name]);
    process.env[name] = text;
  }
}

async function activate(fn, line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    console.error('actionloop: the request is not JSON:', err.message);
    send(JSON.stringify({ __actionloop_error: `The request is not JSON: ${err.message}` }));
    return;
  }
  if (request === null || typeof request !== 'object') request = {};
  setContext(request);
  const args = request.value === undefined || request.value === null ? {} : request.value;
  running += 1;
  const result = await new Promise((resolve) => {
    settle = resolve;
    activation.run(running, () => {
      Promise.resolve()
        .then(() => fn(args))
        .then(
          (value) => resolve(value === undefined || value === null ? {} : value),
          (err) => resolve(failure(err)),
        );
    });
  });
  settle = null;
  const answer = encode(result); // before flushing: a failing toJSON() may still log
  await flushLogs();
  send(answer);
}

// Loads the packages the image names in OW_PRELOAD before any code arrives, so that an action
// requiring them finds them cached. Resolved from the launcher's folder, as an action's own
// require() resolves them (up the tree to the image's node_modules). What they print is not an
// action's and is kept from the logs; a failure is reported to the proxy, never raised.
async function preload(names) {
  const loaded = [];
  const failed = {};
  const writes = [process.stdout.write, process.stderr.write];
  process.stdout.write = process.stderr.write = () => true;
  try {
    for (const name of names.split(',').map((n) => n.trim()).filter(Boolean)) {
      try {
        try {
          require(name);
        } catch (err) {
          if (err.code !== 'ERR_REQUIRE_ESM') throw err;
          await import(require.resolve(name));
        }
        loaded.push(name);
      } catch (err) {
        failed[name] = firstLine(describe(err));
      }
    }
  } finally {
    [process.stdout.write, process.stderr.write] = writes;
  }
  return { preloaded: loaded, failed };
}

// V8 compiles a function at its first call: load a one-line action that is never run, from
// memory (no file, no cache entry left), and take the first steps of an activation, so that
// the real /init and first /run find their paths compiled.
function warmUp() {
  const filename = path.join(process.cwd(), '__actionloop_warm_up__.js');
  try {
    const loaded = { ...loadCommonJS(filename, 'function main(args) { return args; }', 'main') };
    vm.compileFunction('', WRAPPER, { filename });
    findFunction(loaded, 'main');
    setContext({});
    encode(JSON.parse('{"value": {}}'));
    activation.run(0, () => Promise.resolve().then(() => null));
  } catch {
    // only a missed speed-up
  } finally {
    delete Module._cache[filename];
  }
}

async function main() {
  const lines = readLines(requestsFd);
  let setup;
  if (process.argv.length > 2) {
    const ack = Boolean(process.env.__OW_WAIT_FOR_ACK);
    setup = { dir: process.cwd(), main: process.argv[2], file: process.argv[3] || null, env: {}, ack };
  } else {
    // Node makes process.stdout and process.stderr at their first use, about a millisecond
    // each: while the interpreter waits for its code, not inside the action's /init.
    void process.stdout;
    void process.stderr;
    const names = process.env.OW_PRELOAD || '';
    if (names.trim()) send(JSON.stringify(await preload(names)));
    // The warm-up (1-2 ms) only while nothing waits: an /init already on the pipe (the proxy
    // was not started ahead, the container is cold) is read first, in the poll phase before
    // setImmediate's, and then goes without it.
    let arrived = false;
    const next = lines.next().then((line) => {
      arrived = true;
      return line;
    });
    setImmediate(() => arrived || warmUp());
    const first = await next;
    if (first.done) process.exit(0);
    setup = JSON.parse(first.value);
  }
  const fn = await init(setup);
  for await (const line of lines) await activate(fn, line);
  process.exit(0);
}

main().catch((err) => {
  console.error('actionloop: launcher failure:', isError(err) ? err.stack : describe(err));
  process.exit(1);
});
