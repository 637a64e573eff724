#!/usr/bin/env python3
"""Benchmark of the actionloop proxy against the physical floor (issue 13). Standard library only.

For python, nodejs and php (a language whose interpreter is missing is skipped), in one run:

- latency of an echo action at 60 B, 100 KiB and 1 MiB, on one kept connection and on a fresh
  connection per request (the invoker's way), against the floor of one activation: the HTTP
  hop (examples/hop.rs, a server with no logic, through the same client) plus the pipe floor
  (the interpreter running a minimal JSON line loop on pipes); interleaved rounds;
- the proxy's CPU time and system calls per activation, beside its child's, the floor's, the hop's;
- /init prewarmed and sent as the port opens, against the interpreter's bare start;
- memory: the proxy's peak at /init of a 48 MiB zip and at a 100 MiB /run, RSS idle and after
  traffic; the binary's size; 4 connections with 1 and 4 children;
- OW_PRELOAD with the library each runtime image ships (requests, openwhisk, Guzzle): what
  loading it costs the bare interpreter, /init of an action importing it without and with the
  preload, and the idle RSS of the proxy and its prewarmed child either way;
- dependencies at /init: a zip with a requirements.txt installed by pip from a local wheel.

Files: harness.py (processes, clients, timing loops, /proc, perf or strace, packages), measure.py (one
function per measurement), report.py (the targets, stated once, the verdicts, tables and JSON),
languages.py.

Usage: python3 bench/bench.py [--quick] [--json FILE] [--markdown FILE] [--lang python,nodejs,php]
                              [--binary PATH] [--hop PATH]
Targets are judged and printed as met or missed, never asserted: the exit status is 0 unless the
bench itself broke.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import harness
import measure
import report
from harness import ROOT, BenchError, Hop, PipeLoop, Proxy, syscall_counter
from languages import LANGS


class Subject:
    """One language under test: its interpreter, and the processes the measurements drive."""

    def __init__(self, name, spec, interpreter, binary, floors):
        self.name, self.spec, self.interpreter, self.binary = name, spec, interpreter, binary
        self.hop, self.hop_fixed, self.pipes = floors
        self.proxy = self.floor = self.launcher = None
        self.workdir = None
        self.loop_env = None  # the environment of the floor loop and the launcher alone


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def start_loops(subject, workdir):
    """The floor loop and the repo's launcher alone, with the environment the proxy gives its
    interpreter (GLIBC_TUNABLES for python), so that they stay a floor."""
    spec = subject.spec
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    tunables = harness.environ(subject.proxy.child() or 0).get("GLIBC_TUNABLES")
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    subject.workdir, subject.loop_env = workdir, env
    script = os.path.join(workdir, spec["floor_file"])
    with open(script, "w") as f:
        f.write(spec["floor"])
    subject.floor = PipeLoop([subject.interpreter, script], env=env)
    body = measure.run_body(60)
    if subject.floor.call(body + b"\n") != measure.echoed(body):
        raise BenchError("the floor loop does not echo")
    action = os.path.join(workdir, "launcher-" + subject.name)
    os.makedirs(action, exist_ok=True)
    with open(os.path.join(action, spec["source"]), "w") as f:
        f.write(spec["echo"])
    subject.launcher = PipeLoop([subject.interpreter, os.path.join(ROOT, spec["launcher"])], cwd=action, env=env)
    init = {"dir": action, "file": spec["source"], "main": "main", "env": {}}
    ack = subject.launcher.call(json.dumps(init).encode() + b"\n")
    if json.loads(bytes(ack)).get("ok") is not True:
        raise BenchError("the launcher did not load the echo action: %r" % bytes(ack[:200]))
    return tunables


def provide_library(subject, libdir):
    """The language's preload library (languages.py, "preload"), made ready for the proxies in
    `libdir` and the bare interpreter there: returns (lib, how it was provided) for
    measure.preload, or (None, why not)."""
    pre, interpreter = subject.spec["preload"], subject.interpreter
    env, names = {}, pre["library"]
    if pre["provide"] == "pip":
        how = "importable by %s" % interpreter
        if harness.quiet_run([interpreter] + pre["load"], cwd=libdir) is not None:
            target = os.path.join(os.path.dirname(libdir), "pylib")
            why = harness.pip_install_target(interpreter, pre["library"], target)
            if why:
                return None, "%s is not importable and pip install failed: %s" % (pre["library"], why)
            env, how = {"PYTHONPATH": target}, "pip-installed into the bench's own PYTHONPATH"
    elif pre["provide"] == "npm":
        how = "npm-installed into %s, above the proxies' folders" % os.path.join(libdir, "node_modules")
        if not os.path.isdir(os.path.join(libdir, "node_modules", pre["library"])):
            why = harness.npm_install(libdir, pre["library"])
            if why:
                return None, "npm install %s failed: %s" % (pre["library"], why)
    else:
        if not os.path.isfile(pre["file"]):
            return None, "%s is missing (%s)" % (pre["file"], pre["missing"])
        names = os.path.join(libdir, "warm-%s.php" % subject.name)
        with open(names, "w") as f:
            f.write(pre["warm"])
        how = "%s, through a warm-up file that requires it and loads the client class" % pre["file"]
    full = dict(os.environ, **env)
    why = harness.quiet_run([interpreter] + pre["load"], cwd=libdir, env=full)
    if why:
        return None, "%s cannot be loaded: %s" % (pre["library"], why)
    lib = {"library": pre["library"], "names": names, "env": env, "parent": libdir, "action": pre["action"],
           "load": pre["load"], "provided": how,
           "version": harness.first_line([interpreter] + pre["lib_version"], cwd=libdir, env=full)}
    return lib, how


def failed(out, name, e):
    """Notes what broke a part of a language's run; the rest goes on."""
    out["error"] = (out["error"] + "; " if out.get("error") else "") + str(e)[:1000]
    log("%s: failed: %s" % (name, str(e)[:1000]))


def bench_language(name, args, plan, floors, workdir):
    spec = LANGS[name]
    interpreter, how = harness.resolve_interpreter(spec["interpreter"], spec["ask_path"])
    if interpreter is None:
        return {"skipped": how}
    out = {"interpreter": interpreter, "interpreter_how": how,
           "version": harness.first_line([interpreter] + spec["version"])}
    subject = Subject(name, spec, interpreter, args.binary, floors)
    try:
        log("%s: proxy with the echo action, floor loop, launcher (%s)" % (name, interpreter))
        subject.proxy = Proxy(args.binary, name, interpreter)
        subject.proxy.wait_port().close()
        client = harness.Client(subject.proxy.port, keep=False)
        status, answer = client.post("/init", measure.init_body(spec["echo"]))
        if status != 200:
            raise BenchError("/init of the echo action answered %d: %r; %s" % (
                status, bytes(answer[:300]), subject.proxy.stderr()))
        out["glibc_tunables"] = start_loops(subject, workdir)
        time.sleep(0.2)
        out["rss"] = {"idle_kib": measure.rss_kib(subject.proxy)}

        out["latency"] = {}
        for pattern in measure.PATTERNS:
            log("%s: latency, %s" % (name, pattern))
            out["latency"][pattern] = measure.latency(subject, pattern, plan)
        out["rss"]["after_traffic_kib"] = measure.rss_kib(subject.proxy)

        out["cpu"] = {}
        for pattern in measure.PATTERNS:
            log("%s: CPU per activation, %s" % (name, pattern))
            out["cpu"][pattern] = {size: measure.cpu_per_activation(subject, pattern, size, plan["cpu_requests"][size])
                                   for size in measure.CPU_SIZES}
        counter = syscall_counter()
        if counter:
            out["syscalls"] = {}
            out["syscalls_by"] = counter[1]
            for pattern in measure.PATTERNS:
                log("%s: system calls, %s" % (name, pattern))
                out["syscalls"][pattern] = {
                    size: measure.syscalls_per_activation(subject, pattern, size, plan["syscall_requests"][size],
                                                          counter[0])
                    for size in measure.CPU_SIZES}
        else:
            out["syscalls_skipped"] = "neither perf (with tracepoints) nor strace is usable (apt-get install -y strace)"
            log("%s: %s" % (name, out["syscalls_skipped"]))

        log("%s: 4 connections" % name)
        n = plan["throughput_requests"]
        out["throughput"] = [measure.throughput(subject, "echo", 1, n["echo"], proxy=subject.proxy)]
        out["rss"]["after_4conn_kib"] = measure.rss_kib(subject.proxy)
        out["throughput"] += [measure.throughput(subject, "echo", 4, n["echo"]),
                              measure.throughput(subject, "sleep", 1, n["sleep"]),
                              measure.throughput(subject, "sleep", 4, n["sleep"])]
    except (BenchError, OSError, ValueError) as e:
        failed(out, name, e)
        return out
    finally:
        for p in (subject.proxy, subject.floor, subject.launcher):
            if p is not None:
                p.close()
    try:
        log("%s: /init, %d runs each" % (name, plan["init_runs"]))
        out["init"] = measure.init_latency(subject, plan["init_runs"])
        log("%s: memory peaks" % name)
        # made here and dropped at once: a bench process carrying them would fork slower
        body = measure.zip_init_body(spec["zip_entry"], spec["hello"], 48 * harness.MIB)[0]
        out["memory"] = {"init_zip": measure.peak_at_init_zip(subject, body)}
        body, count = measure.newline_run_body(100 * harness.MIB)
        out["memory"]["run_body"] = measure.peak_at_run_body(subject, body, count)
        del body
    except (BenchError, OSError, ValueError) as e:
        failed(out, name, e)
    if "preload" in spec:
        try:
            libdir = os.path.join(workdir, "proxy")
            os.makedirs(libdir, exist_ok=True)
            lib, how = provide_library(subject, libdir)
            if lib is None:
                out["preload_skipped"] = how
                log("%s: no preload measured: %s" % (name, how))
            else:
                log("%s: preloading %s (%s), %d runs each" % (name, lib["library"], how, plan["preload_runs"]))
                out["preload"] = measure.preload(subject, lib, plan["preload_runs"])
                out["preload"].update({k: lib[k] for k in ("library", "names", "provided", "version")})
        except (BenchError, OSError, ValueError) as e:
            failed(out, name, e)
    if "install" in spec:
        try:
            log("%s: /init installing requirements.txt from a local wheel, %d runs each" % (
                name, plan["install_runs"]))
            out["install"] = measure.init_install(subject, workdir, plan["install_runs"])
        except (BenchError, OSError, ValueError) as e:
            failed(out, name, e)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and runs: a smoke run of about a minute")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables as markdown")
    ap.add_argument("--lang", default="python,nodejs,php", help="comma-separated languages")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "actionloop"))
    ap.add_argument("--hop", default=os.path.join(ROOT, "target", "release", "examples", "hop"))
    args = ap.parse_args()
    langs = [x.strip() for x in args.lang.split(",") if x.strip()]
    for lang in langs:
        if lang not in LANGS:
            sys.exit("bench: unknown language %r (%s)" % (lang, ", ".join(LANGS)))
    for path, how in ((args.binary, "cargo build --release"), (args.hop, "cargo build --release --examples")):
        if not os.access(path, os.X_OK):
            sys.exit("bench: %s is missing: run %s first" % (path, how))

    plan = measure.PLANS["quick" if args.quick else "full"]
    started = time.time()
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": args.quick,
        "machine": harness.machine(),
        "proxy": {"binary": os.path.relpath(args.binary, ROOT), "bytes": os.path.getsize(args.binary),
                  "git": harness.git_describe()},
        "hop": os.path.relpath(args.hop, ROOT),
        "plan": plan,
        "load_start": "%.2f %.2f %.2f" % os.getloadavg(),
        "languages": {},
    }
    meter = harness.cpu_meter()
    broke = False
    workdir = tempfile.mkdtemp(prefix="actionloop-floor-")
    floors = []
    try:
        floors = [Hop(args.hop, echo=True), Hop(args.hop, echo=False), PipeLoop([args.hop, "--pipe"])]
        for lang in langs:
            r = bench_language(lang, args, plan, floors, workdir)
            results["languages"][lang] = r
            broke = broke or "error" in r
    except BenchError as e:
        log("bench: %s" % e)
        broke = True
    finally:
        for f in floors:
            f.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["seconds"] = time.time() - started
    results["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    busy, own, total = (b - a for a, b in zip(meter, harness.cpu_meter()))
    results["others_cpu_share"] = max(0.0, busy - own) / total if total > 0 else None
    results["verdicts"] = report.judge(results)
    print(report.text(results))
    if args.json:
        report.write_json(results, args.json)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report.markdown(results))
    sys.exit(1 if broke else 0)


if __name__ == "__main__":
    main()
