"""What the bench needs of each language: its interpreter, its actions, its floor loop.

The floor loop is the least an interpreter can do for one activation on ActionLoop's pipes: a
JSON line in on stdin, parse it, serialise its "value", a line out on fd 3.

"preload": the library the runtime image ships and names in OW_PRELOAD, how the bench provides
it ("provide": importable already or pip-installed into a private PYTHONPATH; npm-installed into
the node_modules above the proxies' folders; a system file), the bare interpreter loading it, its
version, and the action loading it at module level, which answers whether the library was there
before its code ran. "install": the action of the /init-install measurement (a requirements.txt
naming a package of a wheel the bench builds).
"""

# Guzzle as Debian's php-guzzlehttp-guzzle lays it out (include_path /usr/share/php), and the
# classes Dockerfile.php's preload file loads through the autoloader.
GUZZLE_AUTOLOAD = "/usr/share/php/GuzzleHttp/autoload.php"
GUZZLE_TOUCH = "class_exists('GuzzleHttp\\Client'); class_exists('GuzzleHttp\\Psr7\\Request');"

LANGS = {
    "python": {
        "interpreter": "python3",
        # how the interpreter names its own executable (see harness.resolve_interpreter)
        "ask_path": ["-c", "import sys; print(sys.executable)"],
        "version": ["--version"],
        "bare": ["-c", "pass"],
        "launcher": "runtimes/python/launcher.py",
        "source": "main__.py",
        "zip_entry": "__main__.py",
        "echo": "def main(args):\n    return args\n",
        "hello": 'def main(args):\n    return {"greeting": "hello " + args.get("name", "world")}\n',
        "sleep": "import time\n\ndef main(args):\n    time.sleep(0.01)\n    return args\n",
        "count": 'def main(args):\n    return {"n": len(args.get("lines", []))}\n',
        "preload": {
            "library": "requests",
            "provide": "pip",
            "load": ["-c", "import requests"],
            "lib_version": ["-c", "import requests; print(requests.__version__)"],
            "action": (
                "import sys\n"
                "PRELOADED = 'requests' in sys.modules\n"
                "import requests\n\n"
                "def main(args):\n"
                "    return {'greeting': 'hello ' + args.get('name', 'world'), 'preloaded': PRELOADED}\n"
            ),
        },
        "install": {
            "package": "actionloop_benchdep",
            "value": "from a local wheel",
            "requirements": "actionloop-benchdep==0.1\n",
            "action": (
                "import actionloop_benchdep\n\n"
                "def main(args):\n"
                "    return {'dep': actionloop_benchdep.VALUE}\n"
            ),
        },
        "floor_file": "floor.py",
        "floor": (
            "import json, os, sys\n"
            "out = os.fdopen(3, 'wb')\n"
            "for line in sys.stdin.buffer:\n"
            "    value = json.loads(line)['value']\n"
            "    out.write(json.dumps(value, ensure_ascii=False, separators=(',', ':')).encode() + b'\\n')\n"
            "    out.flush()\n"
        ),
    },
    "nodejs": {
        "interpreter": "node",
        "ask_path": ["-p", "process.execPath"],
        "version": ["--version"],
        "bare": ["-e", "0"],
        "launcher": "runtimes/nodejs/launcher.js",
        "source": "index.js",
        "zip_entry": "index.js",
        "echo": "function main(args) { return args; }\nmodule.exports.main = main;\n",
        "hello": (
            "function main(args) { return { greeting: 'hello ' + (args.name || 'world') }; }\n"
            "module.exports.main = main;\n"
        ),
        "sleep": (
            "function main(args) {\n"
            "  return new Promise((resolve) => setTimeout(() => resolve(args), 10));\n"
            "}\nmodule.exports.main = main;\n"
        ),
        "count": "function main(args) { return { n: (args.lines || []).length }; }\nmodule.exports.main = main;\n",
        "preload": {
            "library": "openwhisk",
            "provide": "npm",
            "load": ["-e", "require('openwhisk')"],
            "lib_version": ["-p", "require('openwhisk/package.json').version"],
            "action": (
                "const preloaded = Object.keys(require.cache).some((k) => k.includes('/node_modules/openwhisk/'));\n"
                "const openwhisk = require('openwhisk');\n"
                "function main(args) { return { greeting: 'hello ' + (args.name || 'world'), preloaded }; }\n"
                "module.exports.main = main;\n"
            ),
        },
        "floor_file": "floor.js",
        "floor": (
            "const fs = require('fs');\n"
            "let parts = [];\n"
            "process.stdin.on('data', (chunk) => {\n"
            "  let start = 0, end;\n"
            "  while ((end = chunk.indexOf(10, start)) !== -1) {\n"
            "    parts.push(chunk.subarray(start, end));\n"
            "    const line = parts.length === 1 ? parts[0] : Buffer.concat(parts);\n"
            "    parts = [];\n"
            "    const value = JSON.parse(line.toString('utf8')).value;\n"
            "    const out = Buffer.from(JSON.stringify(value) + '\\n', 'utf8');\n"
            "    let done = 0;\n"
            "    while (done < out.length) done += fs.writeSync(3, out, done);\n"
            "    start = end + 1;\n"
            "  }\n"
            "  if (start < chunk.length) parts.push(chunk.subarray(start));\n"
            "});\n"
        ),
    },
    "php": {
        "interpreter": "php",
        "ask_path": ["-r", "echo PHP_BINARY, PHP_EOL;"],
        "version": ["--version"],
        "bare": ["-r", ";"],
        "launcher": "runtimes/php/launcher.php",
        "source": "index.php",
        "zip_entry": "index.php",
        "echo": "<?php\nfunction main(array $args): array { return $args; }\n",
        "hello": (
            "<?php\nfunction main(array $args): array {\n"
            "    return ['greeting' => 'hello ' . ($args['name'] ?? 'world')];\n}\n"
        ),
        "sleep": "<?php\nfunction main(array $args): array { usleep(10000); return $args; }\n",
        "count": "<?php\nfunction main(array $args): array { return ['n' => count($args['lines'] ?? [])]; }\n",
        "preload": {
            "library": "guzzlehttp/guzzle",
            "provide": "file",
            "file": GUZZLE_AUTOLOAD,
            "missing": "apt-get install -y php-guzzlehttp-guzzle",
            # OW_PRELOAD names this warm-up file, which the bench writes: the autoloader, and
            # the client classes loaded through it
            "warm": "<?php\nrequire_once '%s';\n%s\n" % (GUZZLE_AUTOLOAD, GUZZLE_TOUCH),
            "load": ["-r", "require_once '%s'; %s" % (GUZZLE_AUTOLOAD, GUZZLE_TOUCH)],
            "lib_version": ["-r", "require_once '%s'; echo GuzzleHttp\\ClientInterface::MAJOR_VERSION, '.x';"
                            % GUZZLE_AUTOLOAD],
            "action": (
                "<?php\n"
                "$preloaded = class_exists('GuzzleHttp\\Client', false);\n"
                "require_once '%s';\n"
                "%s\n"
                "function main(array $args): array {\n"
                "    global $preloaded;\n"
                "    return ['greeting' => 'hello ' . ($args['name'] ?? 'world'), 'preloaded' => $preloaded];\n"
                "}\n" % (GUZZLE_AUTOLOAD, GUZZLE_TOUCH)
            ),
        },
        "floor_file": "floor.php",
        "floor": (
            "<?php\n"
            "ini_set('memory_limit', '-1');\n"
            "$out = fopen('php://fd/3', 'w');\n"
            "while (($line = fgets(STDIN)) !== false) {\n"
            "    $value = json_decode($line, true)['value'];\n"
            "    fwrite($out, json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . \"\\n\");\n"
            "    fflush($out);\n"
            "}\n"
        ),
    },
}
