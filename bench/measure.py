"""The measurements, one function each. They return figures; report.py judges and prints them.

Every latency below is the median of round medians (harness.interleave): in each round every
contender runs a batch back to back, the order turning from round to round.
"""

import base64
import io
import json
import os
import random
import subprocess
import time
import zipfile

from harness import (
    KIB, MIB, ROOT, BenchError, Client, Contender, PipeLoop, Proxy, cpu_ns_precise, cpu_us, interleave,
    median, repeat, status_kib, summary, threads_at_once, tree_rss_kib, write_wheel,
)

SIZES = [("60 B", 60), ("100 KiB", 100 * KIB), ("1 MiB", MIB)]
PATTERNS = ["keep-alive", "fresh"]
PATTERN_TEXT = {
    "keep-alive": "keep-alive: one connection for every request",
    "fresh": "fresh connection per request: connect, POST, read the whole answer, close (the invoker's way)",
}

# How much of everything a run does: the full run, and --quick.
PLANS = {
    "full": {
        "rounds": 31,
        "batch": {"60 B": 300, "100 KiB": 60, "1 MiB": 15},
        "warmup": {"60 B": 200, "100 KiB": 30, "1 MiB": 8},
        "cpu_requests": {"60 B": 8000, "1 MiB": 400},
        "syscall_requests": {"60 B": 2000, "1 MiB": 100},
        "init_runs": 9,
        "throughput_requests": {"echo": 1000, "sleep": 50},
        "preload_runs": 7,
        "install_runs": 5,
    },
    "quick": {
        "rounds": 7,
        "batch": {"60 B": 150, "100 KiB": 30, "1 MiB": 8},
        "warmup": {"60 B": 100, "100 KiB": 15, "1 MiB": 4},
        "cpu_requests": {"60 B": 2500, "1 MiB": 100},
        "syscall_requests": {"60 B": 500, "1 MiB": 30},
        "init_runs": 3,
        "throughput_requests": {"echo": 150, "sleep": 10},
        "preload_runs": 3,
        "install_runs": 2,
    },
}
CPU_SIZES = ["60 B", "1 MiB"]

FIXED_ANSWER = b'{"ok":true}'


# ---------------------------------------------------------------------------------------------
# bodies


def run_body(size, ident=None):
    """A /run body of exactly `size` bytes: {"value":{"s":"xxx..."}} (with an id if given)."""
    head = {"id": ident} if ident is not None else {}
    base = len(json.dumps({"value": dict(head, s="")}, separators=(",", ":")))
    if size < base:
        raise ValueError("size %d too small" % size)
    body = json.dumps({"value": dict(head, s="x" * (size - base))}, separators=(",", ":")).encode()
    assert len(body) == size
    return body


def echoed(body):
    """What the echo action (and the floor loop) answers to `body`: the value, compact."""
    return json.dumps(json.loads(body)["value"], separators=(",", ":")).encode()


def http(client, path="/run"):
    """client.post as a one-argument call that insists on 200."""
    def call(body):
        status, answer = client.post(path, body)
        if status != 200:
            raise BenchError("%s answered %d: %r" % (path, status, bytes(answer[:200])))
        return answer
    return call


def ms(ns):
    return ns / 1e6


# ---------------------------------------------------------------------------------------------
# latency against the floor


def latency(subject, pattern, plan):
    """hop, floor and proxy over one connection pattern, at each size, in interleaved rounds.

    hop = examples/hop.rs echoing the body through the same client as the proxy; proxy = the
    echo action; the pipe floor of a round is the lower of the floor loop (the interpreter's
    minimal JSON line loop on pipes) and the repo's launcher alone on pipes (PHP's allocator,
    for one, keeps a busy launcher's 2 MiB chunks but gives the small loop's back to the kernel
    at every 1 MiB request: a floor must not be beaten by what it measures). On a kept
    connection the rounds also time, for the split of the overhead, hop --pipe (the pipes with
    no interpreter) and the hop answering a fixed {"ok":true}."""
    keep = pattern == "keep-alive"
    clients = {
        "hop": Client(subject.hop.port, keep),
        "proxy": Client(subject.proxy.port, keep),
        "hop_fixed": Client(subject.hop_fixed.port, keep),
    }
    out = {}
    try:
        for name, size in SIZES:
            body = run_body(size)
            line = body + b"\n"
            value = echoed(body)
            contenders = [
                Contender("floor", subject.floor.call, line, value),
                Contender("launcher", subject.launcher.call, line, value),
                Contender("hop", http(clients["hop"]), body, body),
                Contender("proxy", http(clients["proxy"]), body, value),
            ]
            if keep:
                contenders += [
                    Contender("pipes", subject.pipes.call, line, body),
                    Contender("hop_fixed", http(clients["hop_fixed"]), body, FIXED_ANSWER),
                ]
            interleave(contenders, plan["rounds"], plan["batch"][name], plan["warmup"][name])
            by = {c.name: [ms(x) for x in c.medians] for c in contenders}
            by["pipe_floor"] = [min(f, l) for f, l in zip(by["floor"], by["launcher"])]
            sums = [h + f for h, f in zip(by["hop"], by["pipe_floor"])]
            out[name] = {
                "bytes": size,
                "batch": plan["batch"][name],
                "rounds": plan["rounds"],
                "ms": {k: summary(v) for k, v in by.items()},
                "round_medians_ms": by,
                "launcher_was_floor": sum(l < f for f, l in zip(by["floor"], by["launcher"])),
                "floor_sum_ms": summary(sums),
                "ratio": summary([p / s for p, s in zip(by["proxy"], sums)]),
            }
    finally:
        for c in clients.values():
            c.close()
    return out


# ---------------------------------------------------------------------------------------------
# CPU time and system calls per activation


def cpu_per_activation(subject, pattern, size_name, requests):
    """The proxy's own CPU time per request (utime + stime from /proc/PID/stat), over a run of
    `requests` back to back, in µs; beside it, in the same run, its interpreter child's, and
    the hop's and the floor loop's own per request, each over as many requests. The run is cut
    in four quarters alternating proxy, hop, floor so that load swings hit them alike."""
    keep = pattern == "keep-alive"
    body = run_body(dict(SIZES)[size_name])
    line = body + b"\n"
    proxy_c, hop_c = Client(subject.proxy.port, keep), Client(subject.hop.port, keep)
    post_proxy, post_hop = http(proxy_c), http(hop_c)
    child = subject.proxy.child()
    if child is None:
        raise BenchError("the proxy has no child to measure")
    totals = dict.fromkeys(("proxy", "proxy_precise", "child", "hop", "floor"), 0.0)
    try:
        for call, arg in ((post_proxy, body), (post_hop, body), (subject.floor.call, line)):
            repeat(call, arg, max(5, requests // 50))
        quarter = max(1, requests // 4)
        for _ in range(4):
            p0, q0, c0 = cpu_us(subject.proxy.pid), cpu_ns_precise(subject.proxy.pid), cpu_us(child)
            repeat(post_proxy, body, quarter)
            totals["proxy"] += cpu_us(subject.proxy.pid) - p0
            totals["proxy_precise"] += (cpu_ns_precise(subject.proxy.pid) - q0) / 1e3
            totals["child"] += cpu_us(child) - c0
            h0 = cpu_us(subject.hop.pid)
            repeat(post_hop, body, quarter)
            totals["hop"] += cpu_us(subject.hop.pid) - h0
            f0 = cpu_us(subject.floor.pid)
            repeat(subject.floor.call, line, quarter)
            totals["floor"] += cpu_us(subject.floor.pid) - f0
    finally:
        proxy_c.close()
        hop_c.close()
    n = 4 * quarter
    out = {k + "_us": v / n for k, v in totals.items()}
    out.update({"requests": n, "resolution_us": 1e6 / os.sysconf("SC_CLK_TCK") / n})
    return out


def syscalls_per_activation(subject, pattern, size_name, requests, counter):
    """System calls of the proxy (every thread), then of the hop, per request: `counter`
    (harness.PerfTrace or harness.Strace) attached while `requests` requests go through a warm
    connection (or fresh ones)."""
    keep = pattern == "keep-alive"
    body = run_body(dict(SIZES)[size_name])
    out = {}
    for who, port, pid in (("proxy", subject.proxy.port, subject.proxy.pid),
                           ("hop", subject.hop.port, subject.hop.pid)):
        client = Client(port, keep)
        try:
            post = http(client)
            repeat(post, body, 20)
            with counter(pid) as trace:
                repeat(post, body, requests)
                # a kept connection's last answer is in; let the server settle back to waiting
                time.sleep(0.05)
            counts = trace.counts()
        finally:
            client.close()
        total = sum(calls for calls, _ in counts.values())
        order = sorted(counts.items(), key=lambda kv: -kv[1][0])
        out[who] = {
            "per_request": total / requests,
            "by_call": {k: calls / requests for k, (calls, _) in order},
            "errors_by_call": {k: errors / requests for k, (_, errors) in order if errors},
            "requests": requests,
        }
    return out


# ---------------------------------------------------------------------------------------------
# /init


def spawn_ms(argv, cwd=None, env=None):
    """`argv` run to its end, which must be a success: spawn -> exit, in ms."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    took = (time.perf_counter() - t0) * 1e3
    if done.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (" ".join(argv)[:200], done.returncode,
                                                 done.stderr.decode(errors="replace").strip()[-300:]))
    return took


def bare_start(subject, cwd=None, env=None):
    """The interpreter starting and ending with nothing to do (python3 -c pass, ...), in ms."""
    return spawn_ms([subject.interpreter] + subject.spec["bare"], cwd, env)


def launcher_start(subject):
    """The repo's launcher started by hand the way the proxy prewarms it, then given the hello
    action: spawn -> its ack, in ms. What /init sent as the port opens cannot go below."""
    action = os.path.join(subject.workdir, "hello-" + subject.name)
    os.makedirs(action, exist_ok=True)
    with open(os.path.join(action, subject.spec["source"]), "w") as f:
        f.write(subject.spec["hello"])
    line = json.dumps({"dir": action, "file": subject.spec["source"], "main": "main", "env": {}}).encode() + b"\n"
    t0 = time.perf_counter()
    loop = PipeLoop([subject.interpreter, os.path.join(ROOT, subject.spec["launcher"])], cwd=action,
                    env=subject.loop_env)
    try:
        ack = bytes(loop.call(line))
        took = (time.perf_counter() - t0) * 1e3
    finally:
        loop.close()
    if json.loads(ack).get("ok") is not True:
        raise BenchError("the launcher did not load the hello action: %r" % ack[:200])
    return took


def init_body(code):
    return json.dumps({"value": {"code": code, "main": "main"}}).encode()


def _check_hello(client):
    status, answer = client.post("/run", b'{"value":{"name":"bench"}}')
    if status != 200 or b"hello bench" not in bytes(answer):
        raise BenchError("the hello action answered %d: %r" % (status, bytes(answer[:200])))


def init_once(subject, at_open):
    """One fresh proxy, one /init of the hello action on a fresh connection.

    at_open: connect-retry every 1 ms from the spawn on (the invoker retries every 50 ms) and
    send /init on the first connection that opens; the figure is spawn -> /init answered.
    Otherwise (prewarmed): wait until the proxy has been up 1 s; the figure is /init sent ->
    answered. Returns (ms, port-open ms after spawn)."""
    proxy = Proxy(subject.binary, subject.name, subject.interpreter)
    try:
        sock = proxy.wait_port(every=0.001)
        opened = time.perf_counter()
        if not at_open:
            sock.close()
            time.sleep(max(0.0, proxy.spawned + 1.0 - time.perf_counter()))
        client = Client(proxy.port, keep=True)
        body = init_body(subject.spec["hello"])
        t0 = time.perf_counter()
        if at_open:
            client.sock, t0 = sock, proxy.spawned
        status, answer = client.post("/init", body)
        took = (time.perf_counter() - t0) * 1e3
        if status != 200:
            raise BenchError("/init answered %d: %r; %s" % (status, bytes(answer[:300]), proxy.stderr()))
        _check_hello(client)
        client.close()
        return took, (opened - proxy.spawned) * 1e3
    finally:
        proxy.close()


def init_latency(subject, runs):
    """bare start, the launcher's own start, /init prewarmed and /init sent as the port opens,
    `runs` of each, interleaved (the order turns each run)."""
    kinds = ["bare", "launcher", "prewarmed", "at_open"]
    got = {k: [] for k in kinds}
    opened = []
    for r in range(runs):
        for kind in kinds[r % 4:] + kinds[:r % 4]:
            if kind == "bare":
                got["bare"].append(bare_start(subject))
            elif kind == "launcher":
                got["launcher"].append(launcher_start(subject))
            else:
                took, port_ms = init_once(subject, kind == "at_open")
                got[kind].append(took)
                if kind == "at_open":
                    opened.append(port_ms)
    out = {k: summary(v) for k, v in got.items()}
    out["port_open_after_spawn"] = summary(opened)
    out["samples_ms"] = got
    return out


# ---------------------------------------------------------------------------------------------
# preloading the image's library, dependencies at /init

UP_BEFORE_INIT = 1.5  # s a proxy is up before these /init: its prewarmed child's preload is done


def _up_for(proxy, seconds):
    proxy.wait_port().close()
    time.sleep(max(0.0, proxy.spawned + seconds - time.perf_counter()))


def preload_init_once(subject, lib, preloaded):
    """A fresh proxy in lib["parent"] with lib["env"], and OW_PRELOAD=lib["names"] when
    `preloaded`, up UP_BEFORE_INIT s: the idle RSS of it and its prewarmed child summed, then
    /init of the action loading the library at module level (sent -> answered, a fresh
    connection). The action says whether the library was loaded before its code ran: it must
    be exactly when it was preloaded. Returns (ms, RSS KiB, processes)."""
    env = dict(lib["env"], OW_PRELOAD=lib["names"]) if preloaded else lib["env"]
    proxy = Proxy(subject.binary, subject.name, subject.interpreter, env, parent=lib["parent"])
    try:
        _up_for(proxy, UP_BEFORE_INIT)
        rss, procs = tree_rss_kib(proxy.pid)
        client = Client(proxy.port, keep=True)
        body = init_body(lib["action"])
        t0 = time.perf_counter()
        status, answer = client.post("/init", body)
        took = (time.perf_counter() - t0) * 1e3
        if status != 200:
            raise BenchError("/init of the %s action answered %d: %r; %s" % (
                lib["library"], status, bytes(answer[:300]), proxy.stderr()))
        status, answer = client.post("/run", b'{"value":{"name":"bench"}}')
        got = json.loads(bytes(answer)) if status == 200 else None
        client.close()
        if got != {"greeting": "hello bench", "preloaded": preloaded}:
            raise BenchError("the %s action %s OW_PRELOAD answered %d: %r; %s" % (
                lib["library"], "with" if preloaded else "without", status, bytes(answer[:300]), proxy.stderr()))
        return took, rss, procs
    finally:
        proxy.close()


def preload(subject, lib, runs):
    """The bare interpreter's start against it loading the library (python3 -c 'import
    requests', ...; spawn -> exit), and /init of the action loading it, prewarmed, without and
    with OW_PRELOAD naming it; `runs` of each, interleaved (the order turns each run), a fresh
    proxy each. Also each proxy's idle RSS with its prewarmed child, before its /init."""
    kinds = ["bare", "load", "without", "with"]
    got = {k: [] for k in kinds}
    rss = {"without": [], "with": []}
    procs = set()
    env = dict(os.environ, **lib["env"])
    load = [subject.interpreter] + lib["load"]
    for r in range(runs):
        for kind in kinds[r % 4:] + kinds[:r % 4]:
            if kind == "bare":
                got[kind].append(bare_start(subject, lib["parent"], env))
            elif kind == "load":
                got[kind].append(spawn_ms(load, lib["parent"], env))
            else:
                took, kib, n = preload_init_once(subject, lib, kind == "with")
                got[kind].append(took)
                rss[kind].append(kib)
                procs.add(n)
    out = {k: summary(v) for k, v in got.items()}
    out["load_cost_ms"] = median(got["load"]) - median(got["bare"])
    out["saved_ms"] = median(got["without"]) - median(got["with"])
    out["rss_kib"] = {k: summary(v) for k, v in rss.items()}
    out["rss_cost_kib"] = median(rss["with"]) - median(rss["without"])
    out["processes"] = sorted(procs)
    out["samples_ms"] = got
    out["up_before_init_s"] = UP_BEFORE_INIT
    return out


def install_init_once(subject, body, env, parent, want):
    """A fresh proxy with `env` (pip's offline settings), up UP_BEFORE_INIT s, /init of the zip
    `body` whose requirements.txt it installs (sent -> answered, in ms); the action must then
    answer `want`, the installed package's value."""
    proxy = Proxy(subject.binary, subject.name, subject.interpreter, env, parent=parent)
    try:
        _up_for(proxy, UP_BEFORE_INIT)
        client = Client(proxy.port, keep=True)
        t0 = time.perf_counter()
        status, answer = client.post("/init", body)
        took = (time.perf_counter() - t0) * 1e3
        if status != 200:
            raise BenchError("/init with requirements.txt answered %d: %r; %s" % (
                status, bytes(answer[:300]), proxy.stderr()))
        status, answer = client.post("/run", b'{"value":{}}')
        got = json.loads(bytes(answer)) if status == 200 else None
        client.close()
        if got != want:
            raise BenchError("the action with an installed dependency answered %d: %r; %s" % (
                status, bytes(answer[:300]), proxy.stderr()))
        return took
    finally:
        proxy.close()


def init_install(subject, work, runs):
    """/init of a zip (the action, a one-line requirements.txt, no virtualenv/) whose package
    pip installs from a wheel the bench builds in work/wheels (PIP_NO_INDEX, PIP_FIND_LINKS),
    against pip alone doing the same install by hand (the proxy's arguments, into a fresh
    folder, spawn -> exit); `runs` of each, interleaved, a fresh proxy each."""
    spec = subject.spec["install"]
    wheels = os.path.join(work, "wheels")
    wheel = write_wheel(wheels, spec["package"], "0.1",
                        {spec["package"] + "/__init__.py": "VALUE = %r\n" % spec["value"]})
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    body, zip_bytes = archive_init_body({subject.spec["zip_entry"]: spec["action"],
                                         "requirements.txt": spec["requirements"]})
    alone = os.path.join(work, "pip-alone")
    os.makedirs(alone, exist_ok=True)
    with open(os.path.join(alone, "requirements.txt"), "w") as f:
        f.write(spec["requirements"])
    got = {"pip": [], "init": []}
    for r in range(runs):
        for kind in (["pip", "init"] if r % 2 == 0 else ["init", "pip"]):
            if kind == "init":
                got[kind].append(install_init_once(subject, body, env, work, {"dep": spec["value"]}))
                continue
            target = os.path.join(alone, "site-packages-%d" % r)
            got[kind].append(spawn_ms([subject.interpreter, "-m", "pip", "install", "--disable-pip-version-check",
                                       "--no-input", "--target", target, "-r", "requirements.txt"],
                                      alone, dict(os.environ, **env)))
            if not os.path.isfile(os.path.join(target, spec["package"], "__init__.py")):
                raise BenchError("pip alone did not install %s into %s" % (spec["package"], target))
    out = {k: summary(v) for k, v in got.items()}
    out["above_pip_ms"] = median(got["init"]) - median(got["pip"])
    out["requirement"] = spec["requirements"].strip()
    out["wheel"] = os.path.basename(wheel)
    out["zip_bytes"] = zip_bytes
    out["imported"] = True  # every /init's action answered the installed package's value
    out["up_before_init_s"] = UP_BEFORE_INIT
    out["samples_ms"] = got
    return out


# ---------------------------------------------------------------------------------------------
# memory


def archive_init_body(files):
    """{"value":{"code":<base64 zip>,"binary":true,...}}: a stored (uncompressed) zip of
    `files` {name: text or bytes}. Returns (body, the zip's size)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    packed = buf.getvalue()
    body = json.dumps({"value": {"code": base64.b64encode(packed).decode(), "binary": True, "main": "main"}})
    return body.encode(), len(packed)


def zip_init_body(entry, code, zip_bytes):
    """The same for a zip of `zip_bytes` holding the action and random data."""
    rnd = random.Random(13)
    return archive_init_body({entry: code, "data.bin": rnd.randbytes(zip_bytes - 1024)})


def newline_run_body(total):
    """A /run body of about `total` bytes, a list of strings with a raw newline between each
    and escaped ones inside: what a pretty-printed or generated big request looks like."""
    item = json.dumps("x" * 1000 + "\n" + "y" * 20)  # json.dumps writes the newline as \n
    count = total // (len(item) + 2)
    body = b'{"value":{"lines":[\n' + b",\n".join([item.encode()] * count) + b"\n]}}\n"
    return body, count


def peak_at_init_zip(subject, body):
    """A fresh proxy's VmHWM after /init of a zip `body`; the action must run after it."""
    proxy = Proxy(subject.binary, subject.name, subject.interpreter)
    try:
        proxy.wait_port().close()
        before = status_kib(proxy.pid, "VmHWM")
        client = Client(proxy.port, keep=False)
        t0 = time.perf_counter()
        status, answer = client.post("/init", body)
        took = time.perf_counter() - t0
        peak = status_kib(proxy.pid, "VmHWM")
        if status != 200:
            raise BenchError("/init of the zip answered %d: %r; %s" % (status, bytes(answer[:300]), proxy.stderr()))
        status, answer = client.post("/run", b'{"value":{"name":"bench"}}')
        if status != 200 or b"hello bench" not in bytes(answer):
            raise BenchError("the zipped hello action answered %d: %r" % (status, bytes(answer[:200])))
        return {"body_bytes": len(body), "peak_kib": peak, "peak_before_kib": before, "seconds": took}
    finally:
        proxy.close()


def peak_at_run_body(subject, body, count):
    """A fresh proxy's VmHWM after one /run of `body` to an action answering its length."""
    proxy = Proxy(subject.binary, subject.name, subject.interpreter)
    try:
        proxy.wait_port().close()
        client = Client(proxy.port, keep=False)
        status, answer = client.post("/init", init_body(subject.spec["count"]))
        if status != 200:
            raise BenchError("/init of the count action answered %d: %r" % (status, bytes(answer[:300])))
        before = status_kib(proxy.pid, "VmHWM")
        t0 = time.perf_counter()
        status, answer = client.post("/run", body)
        took = time.perf_counter() - t0
        peak = status_kib(proxy.pid, "VmHWM")
        got = bytes(answer)
        ok = status == 200 and json.loads(got).get("n") == count
        return {"body_bytes": len(body), "peak_kib": peak, "peak_before_kib": before, "seconds": took,
                "answered": ok, "answer": None if ok else "%d %r" % (status, got[:200])}
    finally:
        proxy.close()


def rss_kib(proxy):
    return status_kib(proxy.pid, "VmRSS")


# ---------------------------------------------------------------------------------------------
# 4 connections at once


def throughput(subject, action, children, per_conn, proxy=None):
    """4 threads, each on its own kept connection, `per_conn` 60 B requests with unique ids, on
    the echo or the sleep-bound (10 ms) action, with 1 child or OW_CONCURRENCY=`children`.
    Every answer must carry its own request's id."""
    own = proxy is None
    if own:
        env = {"OW_CONCURRENCY": str(children)} if children > 1 else {}
        proxy = Proxy(subject.binary, subject.name, subject.interpreter, env)
    try:
        if own:
            proxy.wait_port().close()
            c = Client(proxy.port, keep=False)
            status, answer = c.post("/init", init_body(subject.spec[action]))
            if status != 200:
                raise BenchError("/init answered %d: %r" % (status, bytes(answer[:300])))
        tag = "%08x" % random.getrandbits(32)

        def prepare(t):
            client = Client(proxy.port, keep=True)
            for i in range(3):
                client.post("/run", run_body(60, "w%s-%d-%d" % (tag, t, i)))
            return client, [run_body(60, "%s-%d-%d" % (tag, t, i)) for i in range(per_conn)]

        def work(t, state):
            client, bodies = state
            wrong = failed = 0
            for i, body in enumerate(bodies):
                try:
                    status, answer = client.post("/run", body)
                except (OSError, BenchError):
                    failed += 1
                    client.close()
                    continue
                if status != 200:
                    failed += 1
                elif json.loads(bytes(answer)).get("id") != "%s-%d-%d" % (tag, t, i):
                    wrong += 1
            client.close()
            return wrong, failed

        took, results = threads_at_once(4, prepare, work)
    finally:
        if own:
            proxy.close()
    errors = [r for r in results if isinstance(r, Exception)]
    done = [r for r in results if not isinstance(r, Exception)]
    total = 4 * per_conn
    return {
        "action": action, "children": children, "connections": 4, "requests": total,
        "seconds": took, "req_per_s": total / took,
        "wrong": sum(r[0] for r in done), "failed": sum(r[1] for r in done) + per_conn * len(errors),
        "error": str(errors[0]) if errors else None,
    }
