"""The actions of the end-to-end cases, one per case and language, and what each one logs."""

import base64
import io
import zipfile

# ---------------------------------------------------------------- hello (every suite)
# Each loads the library its image preinstalls, so /init fails if it is missing. Logs two lines
# on stdout and one on stderr per activation.

HELLO = {
    "python": '''\
import sys
import requests  # preinstalled in the image


def main(args):
    name = args.get("name", "stranger")
    print("hello stdout 1 for", name)
    print("hello stdout 2 for", name)
    print("hello stderr for", name, file=sys.stderr)
    return {"greeting": "Hello " + name, "library": requests.__version__}
''',
    # The drop-in image (deploy/dropin/) has the upstream launcher and no extra library.
    "dropin-python": '''\
import sys


def main(args):
    name = args.get("name", "stranger")
    print("hello stdout 1 for", name)
    print("hello stdout 2 for", name)
    print("hello stderr for", name, file=sys.stderr)
    return {"greeting": "Hello " + name, "library": "none"}
''',
    "nodejs": '''\
const openwhisk = require('openwhisk'); // preinstalled in the image

function main(args) {
    const name = args.name || 'stranger';
    console.log('hello stdout 1 for ' + name);
    console.log('hello stdout 2 for ' + name);
    console.error('hello stderr for ' + name);
    return { greeting: 'Hello ' + name, library: typeof openwhisk };
}
''',
    "php": '''\
<?php
if (!class_exists('GuzzleHttp\\Client')) {
    throw new Exception('GuzzleHttp\\Client is not preinstalled');
}

function main(array $args): array
{
    $name = $args['name'] ?? 'stranger';
    echo "hello stdout 1 for $name\\n";
    echo "hello stdout 2 for $name\\n";
    fwrite(STDERR, "hello stderr for $name\\n");
    return ['greeting' => "Hello $name", 'library' => GuzzleHttp\\Client::MAJOR_VERSION];
}
''',
}


def hello_logs(name):
    return {
        "stdout": [f"hello stdout 1 for {name}", f"hello stdout 2 for {name}"],
        "stderr": [f"hello stderr for {name}"],
    }


# ---------------------------------------------------------------- context
# What the action sees of its environment when its code loads (at /init) and in each activation.

CONTEXT_KEYS = [
    "E2E_PARAM", "E2E_JSON", "__OW_API_HOST", "__OW_NAMESPACE", "__OW_ACTION_NAME",
    "__OW_ACTION_VERSION", "__OW_ACTIVATION_ID", "__OW_TRANSACTION_ID", "__OW_DEADLINE",
    "__OW_API_KEY",
]
_KEYS = ", ".join(f'"{k}"' for k in CONTEXT_KEYS)

CONTEXT = {
    "python": f'''\
import os

KEYS = [{_KEYS}]
AT_LOAD = {{k: os.environ.get(k) for k in KEYS}}


def main(args):
    return {{"load": AT_LOAD, "run": {{k: os.environ.get(k) for k in KEYS}}}}
''',
    "nodejs": f'''\
const KEYS = [{_KEYS}];
const snapshot = () => Object.fromEntries(KEYS.map((k) => [k, process.env[k] ?? null]));
const AT_LOAD = snapshot();

function main(args) {{
    return {{ load: AT_LOAD, run: snapshot() }};
}}
''',
    "php": f'''\
<?php
const KEYS = [{_KEYS}];

function e2e_snapshot(): array
{{
    $out = [];
    foreach (KEYS as $k) {{
        $v = getenv($k);
        $out[$k] = $v === false ? null : $v;
    }}
    return $out;
}}

$GLOBALS['AT_LOAD'] = e2e_snapshot();

function main(array $args): array
{{
    return ['load' => $GLOBALS['AT_LOAD'], 'run' => e2e_snapshot()];
}}
''',
}

# ---------------------------------------------------------------- big output
# mode "big": three lines of 1 MiB on stdout, the last one without a newline, one line on stderr;
# mode "small": one line on each.

BIG = {
    "python": '''\
import sys

MIB = 1 << 20


def main(args):
    if args.get("mode") == "big":
        sys.stdout.write("a" * MIB + "\\n")
        sys.stdout.write("b" * MIB + "\\n")
        sys.stdout.write("c" * MIB)
        sys.stdout.flush()
        print("big: 3 MiB written", file=sys.stderr)
        return {"bytes": 3 * MIB + 2}
    print("small: after the big one")
    print("small: stderr", file=sys.stderr)
    return {"bytes": 0}
''',
    "nodejs": '''\
const MIB = 1 << 20;

function main(args) {
    if (args.mode === 'big') {
        process.stdout.write('a'.repeat(MIB) + '\\n');
        process.stdout.write('b'.repeat(MIB) + '\\n');
        process.stdout.write('c'.repeat(MIB));
        console.error('big: 3 MiB written');
        return { bytes: 3 * MIB + 2 };
    }
    console.log('small: after the big one');
    console.error('small: stderr');
    return { bytes: 0 };
}
''',
    "php": '''\
<?php
function main(array $args): array
{
    $mib = 1 << 20;
    if (($args['mode'] ?? '') === 'big') {
        echo str_repeat('a', $mib), "\\n";
        echo str_repeat('b', $mib), "\\n";
        echo str_repeat('c', $mib);
        fwrite(STDERR, "big: 3 MiB written\\n");
        return ['bytes' => 3 * $mib + 2];
    }
    echo "small: after the big one\\n";
    fwrite(STDERR, "small: stderr\\n");
    return ['bytes' => 0];
}
''',
}
BIG_LOGS = {
    "big": {
        "stdout": ["a" * (1 << 20), "b" * (1 << 20), "c" * (1 << 20)],
        "stderr": ["big: 3 MiB written"],
    },
    "small": {"stdout": ["small: after the big one"], "stderr": ["small: stderr"]},
}

# ---------------------------------------------------------------- errors
# mode ok: {"ok": true}; app: an application error; throw: an exception "boom"; string: a result
# that is not an object. Each prints "mode <mode>" on stdout first.

ERRORS = {
    "python": '''\
def main(args):
    mode = args.get("mode", "ok")
    print("mode", mode)
    if mode == "app":
        return {"error": "app failed"}
    if mode == "throw":
        raise RuntimeError("boom")
    if mode == "string":
        return "just a string"
    return {"ok": True}
''',
    "nodejs": '''\
function main(args) {
    const mode = args.mode || 'ok';
    console.log('mode ' + mode);
    if (mode === 'app') return { error: 'app failed' };
    if (mode === 'throw') throw new Error('boom');
    if (mode === 'string') return 'just a string';
    return { ok: true };
}
''',
    "php": '''\
<?php
function main(array $args)
{
    $mode = $args['mode'] ?? 'ok';
    echo "mode $mode\\n";
    if ($mode === 'app') {
        return ['error' => 'app failed'];
    }
    if ($mode === 'throw') {
        throw new RuntimeException('boom');
    }
    if ($mode === 'string') {
        return 'just a string';
    }
    return ['ok' => true];
}
''',
}

# ---------------------------------------------------------------- zip

ZIP_FILES = {
    "python": {
        "__main__.py": '''\
from helper import greet


def main(args):
    print("zip: python")
    return {"greeting": greet(args.get("name", "zip"))}
''',
        "helper.py": '''\
def greet(name):
    return "Hello " + name + " from a zip"
''',
    },
    "nodejs": {
        "package.json": '{"name": "e2e-zip", "version": "1.0.0", "main": "lib/entry.js"}\n',
        "lib/entry.js": '''\
const { greet } = require('./greet');

exports.main = (args) => {
    console.log('zip: nodejs');
    return { greeting: greet(args.name || 'zip') };
};
''',
        "lib/greet.js": '''\
exports.greet = (name) => 'Hello ' + name + ' from a zip';
''',
    },
    "php": {
        "index.php": '''\
<?php
require_once __DIR__ . '/lib/greet.php';

function main(array $args): array
{
    echo "zip: php\\n";
    return ['greeting' => greet($args['name'] ?? 'zip')];
}
''',
        "lib/greet.php": '''\
<?php
function greet(string $name): string
{
    return "Hello $name from a zip";
}
''',
    },
}


def zip_code(lang):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in ZIP_FILES[lang].items():
            z.writestr(path, text)
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------- memory
# Holds `mb` MiB in 16 MiB blocks whose pages are all written, saying so after each block.

OOM = {
    "python": '''\
def main(args):
    mb = int(args.get("mb", 0))
    held = []
    while len(held) * 16 < mb:
        held.append(b"\\x01" * (16 << 20))
        print("oom: holding", len(held) * 16, "MiB", flush=True)
    return {"held_mib": len(held) * 16}
''',
    "nodejs": '''\
function main(args) {
    const mb = Number(args.mb || 0);
    const held = [];
    while (held.length * 16 < mb) {
        held.push(Buffer.alloc(16 << 20, 1));
        console.log('oom: holding ' + held.length * 16 + ' MiB');
    }
    return { held_mib: held.length * 16 };
}
''',
    # PHP's own memory_limit (128M by default) would stop it before the container's limit.
    "php": '''\
<?php
ini_set('memory_limit', '-1');

function main(array $args): array
{
    $mb = (int) ($args['mb'] ?? 0);
    $held = [];
    while (count($held) * 16 < $mb) {
        $held[] = str_repeat("\\x01", 16 << 20);
        echo 'oom: holding ', count($held) * 16, " MiB\\n";
    }
    return ['held_mib' => count($held) * 16];
}
''',
}

# ---------------------------------------------------------------- slow (stop)

SLOW = {
    "python": '''\
import time


def main(args):
    print("slow: sleeping", flush=True)
    time.sleep(float(args.get("seconds", 3)))
    print("slow: woke")
    return {"slept": args.get("seconds", 3)}
''',
    "nodejs": '''\
function main(args) {
    const seconds = Number(args.seconds || 3);
    console.log('slow: sleeping');
    return new Promise((resolve) => setTimeout(() => {
        console.log('slow: woke');
        resolve({ slept: seconds });
    }, seconds * 1000));
}
''',
    "php": '''\
<?php
function main(array $args): array
{
    $seconds = (float) ($args['seconds'] ?? 3);
    echo "slow: sleeping\\n";
    usleep((int) ($seconds * 1000000));
    echo "slow: woke\\n";
    return ['slept' => $seconds];
}
''',
}
SLOW_LOGS = {"stdout": ["slow: sleeping", "slow: woke"], "stderr": []}

# ---------------------------------------------------------------- user and files

WHOAMI = {
    "python": '''\
import os


def probe(path):
    try:
        with open(path, "w") as f:
            f.write("probe")
        with open(path) as f:
            ok = f.read() == "probe"
        os.remove(path)
        return ok
    except OSError as e:
        return str(e)


def main(args):
    return {"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
            "wrote_cwd": probe("e2e-probe.txt"), "wrote_tmp": probe("/tmp/e2e-probe.txt")}
''',
    "nodejs": '''\
const fs = require('fs');

function probe(path) {
    try {
        fs.writeFileSync(path, 'probe');
        const ok = fs.readFileSync(path, 'utf8') === 'probe';
        fs.unlinkSync(path);
        return ok;
    } catch (e) {
        return String(e);
    }
}

function main(args) {
    return { uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(),
             wrote_cwd: probe('e2e-probe.txt'), wrote_tmp: probe('/tmp/e2e-probe.txt') };
}
''',
    "php": '''\
<?php
function e2e_probe(string $path)
{
    if (@file_put_contents($path, 'probe') === false) {
        return error_get_last()['message'] ?? 'write failed';
    }
    $ok = file_get_contents($path) === 'probe';
    unlink($path);
    return $ok;
}

function main(array $args): array
{
    $uid = function_exists('posix_getuid') ? posix_getuid() : (int) trim(shell_exec('id -u'));
    $gid = function_exists('posix_getgid') ? posix_getgid() : (int) trim(shell_exec('id -g'));
    return ['uid' => $uid, 'gid' => $gid, 'cwd' => getcwd(),
            'wrote_cwd' => e2e_probe('e2e-probe.txt'), 'wrote_tmp' => e2e_probe('/tmp/e2e-probe.txt')];
}
''',
}
