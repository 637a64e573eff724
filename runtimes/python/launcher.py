"""ActionLoop launcher for Python actions (protocol: runtimes/README.md).

Started by the actionloop proxy before any code arrives, so that /init only pays for loading the
user's module, not for starting the interpreter. Only what the protocol needs is imported up
front: asyncio, traceback and the rest cost tens of milliseconds at a cold start, and are
imported when an action first needs them.
"""

import json
import os
import sys

# The protocol owns stdin and fd 3. Take private copies and give the action /dev/null as stdin,
# so neither user code nor its subprocesses can read our requests or write fake answers.
requests = os.fdopen(os.dup(0), "rb")
answers = os.fdopen(os.dup(3), "wb")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
os.close(3)

# Copies of the log streams: the launcher's own words still reach the logs after an action
# closed its stdout or stderr, and the streams are put back for the next activation.
saved_streams = {1: os.dup(1), 2: os.dup(2)}
report = os.fdopen(os.dup(2), "w", buffering=1, errors="backslashreplace")


def tell(text):
    """A line of the launcher's own on stderr, whatever the action did to its streams."""
    try:
        report.write(text.rstrip("\n") + "\n")
        report.flush()
    except Exception:
        pass


def restore_streams():
    """An action may close fd 1 or 2 (or sys.stdout): the next activation gets them back."""
    for fd, saved in saved_streams.items():
        try:
            same = os.path.sameopenfile(fd, saved)
        except OSError:
            same = False
        if not same:
            os.dup2(saved, fd)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None or stream.closed:
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False))

# The event loop for `async def` actions, made the first time one runs.
loop = None


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
    try:
        import traceback

        return traceback.format_exception_only(type(exc), exc)[-1].strip()
    except Exception:
        return type(exc).__name__


def message(exc):
    """What `{"error": ...}` says of an exception: its text, or its class when it has none."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return text or type(exc).__name__


def print_traceback():
    """The current exception's traceback on stderr, even when the action closed it."""
    import traceback

    try:
        traceback.print_exc()
    except Exception:
        tell(traceback.format_exc())


def activate_virtualenv(folder):
    """Put the site-packages of a bundled `virtualenv/` (virtualenv- or venv-made) on the path."""
    root = os.path.join(folder, "virtualenv")
    if not os.path.isdir(root):
        return
    import glob
    import site

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
    import importlib.util

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
        print_traceback()
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


# The context variables the last activation set, with what they were before it (None: unset).
context_before = {}


def set_context(request):
    """This activation's context, and nothing left over from the last one."""
    wanted = {}
    for key, value in request.items():
        if key == "value":
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        wanted["__OW_" + str(key).upper()] = text
    for name, before in list(context_before.items()):
        if name not in wanted:
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before
            del context_before[name]
    for name, text in wanted.items():
        if name not in context_before:
            context_before[name] = os.environ.get(name)
        try:
            os.environ[name] = text
        except (ValueError, UnicodeError) as err:
            # A NUL, an `=` in the name, a lone surrogate: not an environment variable.
            tell("actionloop: %s cannot be an environment variable (%s); not set" % (ascii(name), err))


def run(function, request):
    """One activation: context into the environment, call, shape the answer."""
    set_context(request)
    args = request.get("value")
    if args is None:
        args = {}
    try:
        result = function(args)
        if hasattr(result, "__await__"):
            result = run_coroutine(result)
    except Exception as err:
        print_traceback()
        result = {"error": message(err)}
    if result is None:
        result = {}
    flush_logs()
    try:
        send(result)
    except Exception as err:
        why = "The action's result could not be serialized to JSON: %s" % summary(err)
        tell("actionloop: " + why)
        flush_logs()
        send({"__actionloop_error": why})
    restore_streams()


def run_coroutine(awaitable):
    """Awaits an `async def` action's result on the launcher's own event loop."""
    global loop
    if loop is None:
        import asyncio

        loop = asyncio.new_event_loop()
    return loop.run_until_complete(awaitable)


def preload(names):
    """Imports the modules the image names in OW_PRELOAD, before any code arrives, so that an
    action importing them finds them loaded. Into the launcher's own namespace only: the
    action's module sees nothing it did not import. What they print is not an action's, so it
    is kept from the logs; a failure is reported, never raised. Returns the report line."""
    import contextlib
    import importlib
    import io

    failed = {}
    loaded = []
    quiet = io.StringIO()
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                importlib.import_module(name)
            loaded.append(name)
        except BaseException as err:
            failed[name] = summary(err)
    return {"preloaded": loaded, "failed": failed}


def decode(line):
    """The request, or None (and an answer saying why) when Python cannot read it."""
    try:
        request = json.loads(line)
    except Exception as err:
        why = "The request could not be decoded: %s" % summary(err)
        tell("actionloop: " + why)
        send({"__actionloop_error": why})
        return None
    return request if isinstance(request, dict) else {}


def main():
    if len(sys.argv) > 1:
        file = sys.argv[2] if len(sys.argv) > 2 else None
        function = init(os.getcwd(), file, sys.argv[1], {}, bool(os.environ.get("__OW_WAIT_FOR_ACK")))
    else:
        names = os.environ.get("OW_PRELOAD", "")
        if names.strip():
            send(preload(names))
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
        request = decode(line)
        if request is not None:
            run(function, request)


if __name__ == "__main__":
    main()
