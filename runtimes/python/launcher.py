"""ActionLoop launcher for Python actions (protocol: runtimes/README.md).

Started by the actionloop proxy before any code arrives, so that /init only pays for loading the
user's module, not for starting the interpreter.
"""

import asyncio
import glob
import importlib.util
import inspect
import json
import os
import site
import sys
import traceback

# The protocol owns stdin and fd 3. Take private copies and give the action /dev/null as stdin,
# so neither user code nor its subprocesses can read our requests or write fake answers.
requests = os.fdopen(os.dup(0), "rb")
answers = os.fdopen(os.dup(3), "wb")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
os.close(3)

loop = asyncio.new_event_loop()


def send(obj):
    """One compact JSON line on the answer channel."""
    try:
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = line.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8: fall back to escaped ASCII, still valid JSON.
        data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")
    answers.write(data + b"\n")
    answers.flush()


def flush_logs():
    """The proxy frames logs once the answer arrives, so everything printed must be out first."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def summary(exc):
    """The last line of the exception as Python prints it, e.g. `NameError: name 'x' ...`."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def activate_virtualenv(folder):
    """Put the site-packages of a bundled `virtualenv/` (virtualenv- or venv-made) on the path."""
    root = os.path.join(folder, "virtualenv")
    if not os.path.isdir(root):
        return
    ours = "python%d.%d" % sys.version_info[:2]
    found = glob.glob(os.path.join(root, "lib", ours, "site-packages"))
    found = found or glob.glob(os.path.join(root, "lib", "python3*", "site-packages"))
    for path in found:
        site.addsitedir(path)
    os.environ["VIRTUAL_ENV"] = root
    os.environ["PATH"] = os.path.join(root, "bin") + os.pathsep + os.environ.get("PATH", "")


class LoadError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def load(folder, file, main):
    """Import the action's entry module and return its `main` function."""
    os.chdir(folder)
    sys.path.insert(0, folder)
    activate_virtualenv(folder)
    entry = os.path.join(folder, file or "__main__.py")
    if not os.path.isfile(entry):
        raise LoadError("locate", "zipped actions must contain __main__.py at the root.")
    spec = importlib.util.spec_from_file_location("main__", entry)
    module = importlib.util.module_from_spec(spec)
    sys.modules["main__"] = module
    spec.loader.exec_module(module)
    function = getattr(module, main, None)
    if not callable(function):
        raise LoadError("start", "the action has no function named '%s'" % main)
    return function


def init(folder, file, main, env, ack):
    """Loads the action. `ack` is false for a standalone executable whose proxy did not ask
    for an ack (`__OW_WAIT_FOR_ACK`): an unasked line would be read as the first answer."""
    for key, value in env.items():
        os.environ[key] = value
    try:
        function = load(folder, file, main)
    except LoadError as err:
        print(str(err), file=sys.stderr)
        failure = {"ok": False, "kind": err.kind, "error": str(err)}
    except BaseException as err:
        traceback.print_exc()
        failure = {"ok": False, "kind": "start", "error": summary(err)}
    else:
        flush_logs()
        if ack:
            send({"ok": True})
        return function
    flush_logs()
    if ack:
        send(failure)
    sys.exit(1)


def run(function, request):
    """One activation: context into the environment, call, shape the answer."""
    for key, value in request.items():
        if key != "value":
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            os.environ["__OW_" + key.upper()] = text
    args = request.get("value")
    if args is None:
        args = {}
    try:
        result = function(args)
        if inspect.isawaitable(result):
            result = loop.run_until_complete(result)
    except Exception as err:
        traceback.print_exc()
        result = {"error": str(err)}
    if result is None:
        result = {}
    flush_logs()
    try:
        send(result)
    except (TypeError, ValueError) as err:
        print("actionloop: the result is not JSON: %s" % err, file=sys.stderr)
        flush_logs()
        send({"__actionloop_error": "The action's result could not be serialized to JSON: %s" % err})


def main():
    if len(sys.argv) > 1:
        file = sys.argv[2] if len(sys.argv) > 2 else None
        function = init(os.getcwd(), file, sys.argv[1], {}, bool(os.environ.get("__OW_WAIT_FOR_ACK")))
    else:
        first = requests.readline()
        if not first:
            return
        setup = json.loads(first)
        main_name = setup.get("main") or "main"
        function = init(setup["dir"], setup.get("file"), main_name, setup.get("env") or {}, True)
    while True:
        line = requests.readline()
        if not line:
            return
        run(function, json.loads(line))


if __name__ == "__main__":
    main()
