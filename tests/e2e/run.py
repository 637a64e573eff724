#!/usr/bin/env python3
"""End-to-end tests of the runtime images, driven the way an OpenWhisk invoker drives them.

    tests/e2e/run.py [--suite smoke|full] [--only CASE,...] [RUNTIME ...]
    tests/e2e/run.py manifest     check deploy/runtimes.json only (no engine needed)
    tests/e2e/run.py selftest     check the harness's log rules on made-up log files

RUNTIME: python, nodejs, php (the default: all three) or dropin-python (deploy/dropin/, smoke
cases only). Images: $IMAGE_PREFIX-<runtime>:$IMAGE_TAG (actionloop-python:latest ...), built
beforehand (`make images`; `make smoke` and `make e2e` build them first). Engine: $ENGINE, else
docker when its engine answers, else podman with $PODMAN_FLAGS and $PODMAN_LIMITS (the defaults of
scripts/engine.sh). E2E_PAUSE=0 runs without pausing; E2E_KEEP=1 leaves the containers.

Each case starts fresh containers as the invoker does (invoker.py), sends the invoker's /init and
/run bodies, pauses the container after each activation and unpauses it before the next, and
reads each activation's logs from the container's log file under the Docker rule and under the
Kubernetes rule. `full` also checks deploy/runtimes.json (manifest.py) and prints per-image
figures: from `run` to the first /init answer, to the first /run answer, and the container's
memory once initialised. Python 3's standard library only.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import actions  # noqa: E402
import invoker  # noqa: E402
import manifest  # noqa: E402
import selftest  # noqa: E402
from invoker import API_HOST, RULES, Collector, Container, EngineError, LogFile  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_PREFIX = os.environ.get("IMAGE_PREFIX", "actionloop")
IMAGE_TAG = os.environ.get("IMAGE_TAG", "latest")
API_KEY = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:e2e-not-a-real-key"
# The action timeout the cases give the invoker's client.
RUN_TIMEOUT = 60.0
INIT_TIMEOUT = 30.0

# runtime -> (language, the hello action's key in actions.HELLO)
RUNTIMES = {
    "python": ("python", "python"),
    "nodejs": ("nodejs", "nodejs"),
    "php": ("php", "php"),
    "dropin-python": ("python", "dropin-python"),
}
DROPIN = {"dropin-python"}


class CaseFailed(Exception):
    pass


class CaseSkipped(Exception):
    pass


def short(text, keep=60):
    text = str(text)
    if len(text) <= keep:
        return repr(text)
    return repr(text[: keep // 2]) + f"...({len(text)} chars)..." + repr(text[-8:])


def diff_lines(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"line {i + 1} is {short(g)}, expected {short(w)}"
    if len(got) > len(want):
        return f"{len(got) - len(want)} extra line(s), the first {short(got[len(want)])}"
    return f"{len(want) - len(got)} line(s) missing, the first {short(want[len(got)])}"


# ---------------------------------------------------------------- the invoker's side


class Action:
    """One container with an action in it, as the invoker's ContainerProxy sees it."""

    def __init__(self, case, container):
        self.case = case
        self.c = container
        logfile = LogFile(container.log_path, container.log_format)
        self.collectors = {rule: Collector(logfile, rule) for rule in RULES}
        self.activations = 0

    def context(self):
        """The keys ContainerProxy adds to a /run body."""
        return {
            "namespace": "guest",
            "action_name": f"/guest/e2e/{self.case.name}",
            "action_version": "0.0.1",
            "activation_id": uuid.uuid4().hex,
            "transaction_id": "e2e" + uuid.uuid4().hex[:29],
            "api_key": API_KEY,
            "deadline": str(int(time.time() * 1000 + RUN_TIMEOUT * 1000)),
        }

    def init(self, code, binary=False, main="main", env=None, init_context=None, expect_ok=True):
        """/init as ContainerProxy sends it: the init parameters and the first activation's
        context as __OW_* strings in env, retried every 50 ms while refused."""
        ctx = init_context or self.context()
        env_strings = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                       for k, v in (env or {}).items()}
        env_strings.update({"__OW_" + k.upper(): v for k, v in ctx.items()})
        value = {"name": self.case.name, "main": main, "binary": binary, "code": code, "env": env_strings}
        ans = invoker.post(self.c.port, "/init", {"value": value}, INIT_TIMEOUT, retry_refused=True,
                           retry_dropped=self.c.engine.kind == "docker")
        self.init_answered = time.monotonic()
        if expect_ok and (ans.status != 200 or ans.json() != {"ok": True}):
            raise CaseFailed(f"/init answered {ans}{self.case.container_tail(self.c)}")
        return ans

    def run(self, value, ctx=None, timeout=RUN_TIMEOUT, pause_first=False):
        """One activation: unpause, /run, collect the logs under both rules, pause.

        pause_first pauses as soon as the answer is in and collects while the container is
        frozen (an invoker with a short pause grace), instead of collecting first. After a
        developer error (not 200, or no answer) the invoker does not wait for the sentinels: it
        reads what the file holds (Collected.nowait_complete tells whether that was everything);
        the rest is read here anyway, so that the activation's logs can be checked whole.
        """
        self.unpause()
        body = dict(ctx or self.context())
        body["value"] = value
        ans = invoker.post(self.c.port, "/run", body, timeout)
        self.activations += 1
        if pause_first:
            self.pause()
        developer_error = ans.error is not None or ans.status != 200
        logs = {rule: col.collect(wait_for_sentinel=not developer_error)
                for rule, col in self.collectors.items()}
        for rule, got in logs.items():
            got.nowait_complete = got.complete if developer_error else None
            got.nowait_said = f"{len(got.lines)} lines and {got.sentinels} sentinels"
            if developer_error and not got.complete:
                self.collectors[rule].collect(wait_for_sentinel=True, into=got)
        if not pause_first:
            self.pause()
        return ans, logs

    def pause(self):
        if self.case.suite.pausing is None and self.c.running():
            self.case.suite.check_pause(self.c)
        if self.case.suite.pausing and self.c.running():
            try:
                self.c.pause()
            except EngineError as e:
                self.case.note(f"pause failed: {e}")

    def unpause(self):
        if self.c.paused:
            self.c.unpause()


def check_logs(logs, want, what):
    """Each rule must have found both sentinels and exactly the lines `want` on each stream."""
    problems = []
    for rule, got in logs.items():
        if not got.complete:
            problems.append(f"{rule} rule: {got.ended}")
        for stream in ("stdout", "stderr"):
            lines = got.stream(stream)
            if stream in want and lines != want[stream]:
                problems.append(f"{rule} rule, {stream}: {diff_lines(lines, want[stream])}")
    if problems:
        raise CaseFailed(f"{what}: logs are not the activation's own: " + "; ".join(problems))


def expect(ans, status, what, result=None, check=None):
    if ans.error or ans.status != status:
        raise CaseFailed(f"{what}: answered {ans}, expected {status}")
    body = ans.json()
    if result is not None and body != result:
        raise CaseFailed(f"{what}: answered {ans}, expected {json.dumps(result)}")
    if check is not None and not check(body):
        raise CaseFailed(f"{what}: unexpected answer {ans}")
    return body


# ---------------------------------------------------------------- cases


class Case:
    def __init__(self, suite, runtime, name):
        self.suite = suite
        self.runtime = runtime
        self.lang, self.hello_key = RUNTIMES[runtime]
        self.name = name
        self.notes = []
        self.containers = []

    def note(self, text):
        self.notes.append(text)

    def image(self):
        return f"{IMAGE_PREFIX}-{self.runtime}:{IMAGE_TAG}"

    def action(self, memory_mb=256):
        name = f"actionloop-e2e-{self.runtime}-{self.name}-{os.getpid()}-{len(self.containers)}"
        self.suite.engine.run("rm", "-f", name, check=False)
        c = Container(self.suite.engine, self.image(), name, memory_mb=memory_mb)
        self.containers.append(c)
        return Action(self, c)

    def container_tail(self, c, lines=15):
        try:
            with open(c.log_path, errors="replace") as f:
                tail = f.read().splitlines()[-lines:]
        except OSError:
            return ""
        return "\n      container log: " + "\n      container log: ".join(t[:200] for t in tail)

    def cleanup(self):
        if os.environ.get("E2E_KEEP") == "1":
            return
        for c in self.containers:
            c.remove()


def case_hello(case, activations):
    """/init and N activations of a hello action: each activation's logs exactly its own under
    both rules, half of them collected after a pause; the proxy does not run as root."""
    a = case.action()
    ans = a.init(actions.HELLO[case.hello_key])
    init_s = a.init_answered - a.c.run_started
    time.sleep(0.5)
    usage, rss = a.c.memory()
    names = ["smoke", None] if activations == 2 else [f"e2e-{i}" for i in range(activations)]
    first_run_s = None
    for i, name in enumerate(names):
        ans, logs = a.run({"name": name} if name else {}, pause_first=i % 2 == 1)
        if first_run_s is None:
            # As if the /run had followed the /init answer at once (not after the memory reading).
            first_run_s = init_s + ans.seconds
        who = name or "stranger"
        expect(ans, 200, f"activation {i + 1}", check=lambda b: isinstance(b, dict) and b.get("greeting") == f"Hello {who}")
        check_logs(logs, actions.hello_logs(who), f"activation {i + 1}")
    a.unpause()
    uid = a.c.exec("id", "-u").stdout.strip()
    if uid in ("", "0"):
        raise CaseFailed(f"the container's processes run as uid {uid or '?'} (root or unknown)")
    case.suite.figure(case.runtime, a.c.run_returned - a.c.run_started, init_s, first_run_s, usage, rss)
    paused = " with pause/unpause around each" if case.suite.pausing else ""
    return (f"{len(names)} activations{paused}: answers right, logs exactly their own under the "
            f"docker and kubernetes rules; uid {uid}")


def case_context(case):
    """The init env (parameters, then the first activation's __OW_* keys, all strings) is there
    when the code loads; each activation sees its own context."""
    a = case.action()
    init_ctx = a.context()
    params = {"E2E_PARAM": "param-value", "E2E_JSON": {"a": 1}}
    a.init(actions.CONTEXT[case.lang], env=params, init_context=init_ctx)
    problems = []
    for i in range(3):
        ctx = a.context()
        ans, logs = a.run({}, ctx=ctx)
        body = expect(ans, 200, f"activation {i + 1}", check=lambda b: isinstance(b, dict) and "run" in b)
        check_logs(logs, {"stdout": [], "stderr": []}, f"activation {i + 1}")
        for when, seen, want_ctx in (("at load", body["load"], init_ctx), (f"in activation {i + 1}", body["run"], ctx)):
            want = {"E2E_PARAM": "param-value", "E2E_JSON": '{"a":1}', "__OW_API_HOST": API_HOST}
            want.update({"__OW_" + k.upper(): v for k, v in want_ctx.items()})
            for key, value in want.items():
                if seen.get(key) != value:
                    problems.append(f"{key} {when} is {short(seen.get(key))}, expected {short(value)}")
        if problems:
            break
    if problems:
        raise CaseFailed("; ".join(sorted(set(problems))))
    return "init parameters and __OW_* at load time; each of 3 activations sees its own context"


def case_big_output(case):
    """3 MiB on stdout without a final newline (three 1 MiB lines: conmon splits them into
    8 KiB records), then a small activation: both activations' logs exact."""
    a = case.action()
    a.init(actions.BIG[case.lang])
    ans, logs = a.run({"mode": "big"})
    expect(ans, 200, "the 3 MiB activation", result={"bytes": 3 * (1 << 20) + 2})
    check_logs(logs, actions.BIG_LOGS["big"], "the 3 MiB activation")
    d = logs["docker"]
    ans, logs = a.run({"mode": "small"})
    expect(ans, 200, "the next activation", result={"bytes": 0})
    check_logs(logs, actions.BIG_LOGS["small"], "the next activation")
    return (f"3 MiB in {d.records} log records ({d.bytes} bytes), collected in {d.seconds * 1000:.0f} ms; "
            f"the last line ends before the sentinel; the next activation's logs are its own")


def case_errors(case):
    """An application error and an exception are 200 and keep the container; a result that is
    not an object is a 502 (a developer error: the invoker reads the logs without waiting, then
    destroys the container)."""
    a = case.action()
    a.init(actions.ERRORS[case.lang])
    plain = {"stderr": []}

    ans, logs = a.run({"mode": "ok"})
    expect(ans, 200, "mode ok", result={"ok": True})
    check_logs(logs, {"stdout": ["mode ok"], **plain}, "mode ok")

    ans, logs = a.run({"mode": "app"})
    expect(ans, 200, "application error", result={"error": "app failed"})
    check_logs(logs, {"stdout": ["mode app"], **plain}, "application error")

    ans, logs = a.run({"mode": "throw"})
    body = expect(ans, 200, "exception",
                  check=lambda b: isinstance(b, dict) and list(b) == ["error"] and "boom" in str(b["error"]))
    check_logs(logs, {"stdout": ["mode throw"]}, "exception")
    trace = logs["docker"].stream("stderr")
    if not any("boom" in line for line in trace):
        raise CaseFailed(f"exception: stderr does not name it: {trace[:5]}")
    exc_note = f"exception -> 200 {json.dumps(body)}, {len(trace)} stderr line(s)"

    ans, logs = a.run({"mode": "ok"})
    expect(ans, 200, "mode ok after the exception", result={"ok": True})
    check_logs(logs, {"stdout": ["mode ok"], **plain}, "mode ok after the exception")

    ans, logs = a.run({"mode": "string"})
    expect(ans, 502, "a string result",
           check=lambda b: isinstance(b, dict) and "did not return a dictionary" in str(b.get("error")))
    check_logs(logs, {"stdout": ["mode string"], **plain}, "a string result")
    case.note("502: the invoker's read without waiting (right after the answer) found "
              + ", ".join(f"{rule}: {got.nowait_said}" for rule, got in logs.items()))
    # The invoker would destroy the container now; whether the proxy would go on serving:
    ans, logs = a.run({"mode": "ok"})
    case.note(f"after the 502 (the invoker destroys the container; tried anyway): {ans}")
    return f"app error -> 200, container kept; {exc_note}, container kept; non-object -> 502"


def case_zip(case):
    """A zip action (binary: true, base64) with a module of its own."""
    a = case.action()
    a.init(actions.zip_code(case.lang), binary=True)
    ans, logs = a.run({"name": "Ada"})
    expect(ans, 200, "the zip action", result={"greeting": "Hello Ada from a zip"})
    check_logs(logs, {"stdout": [f"zip: {case.lang}"], "stderr": []}, "the zip action")
    return f"{len(actions.ZIP_FILES[case.lang])} files, entry and helper module found; logs exact"


def case_oom(case):
    """An action that writes 768 MiB in a --memory 256m container: the invoker must see a
    non-200 or a dropped connection. What follows is reported."""
    a = case.action(memory_mb=256)
    a.init(actions.OOM[case.lang])
    ans, logs = a.run({"mb": 768})
    if ans.error == "timeout":
        raise CaseFailed(f"/run of the OOM activation got no answer in {RUN_TIMEOUT:.0f} s")
    if ans.error is None and ans.status == 200:
        raise CaseFailed(f"the action held 768 MiB in a 256 MiB container: {ans}")
    state = a.c.state()
    events = a.c.memory_events()
    held = [line for _, line in logs["docker"].lines if line.startswith("oom: holding")]
    other = [f"{s}: {line}" for s, line in logs["docker"].lines if not line.startswith("oom: holding")]
    case.note(f"answer after {ans.seconds:.2f} s: {ans}")
    case.note(f"logs: {len(held)} 'holding' lines (last {held[-1] if held else '-'}); other lines: {other[:4]}")
    for rule, got in logs.items():
        case.note(f"  {got.summary()}; invoker's read without waiting complete: {got.nowait_complete}")
    up = invoker.alive(state)
    case.note(f"container: {state.get('Status')}, OOMKilled {state.get('OOMKilled')}, "
              f"exit code {state.get('ExitCode')}; the cgroup's OOM kills: {events}")
    if up:
        ans2, logs2 = a.run({"mb": 0})
        case.note(f"next /run (the invoker would have destroyed the container): {ans2}; "
                  f"logs {[line for _, line in logs2['docker'].lines][:3]}, complete {logs2['docker'].complete}")
        ans3, _ = a.run({"mb": 0})
        case.note(f"and the one after: {ans3}")
    how = f"dropped connection ({ans.error})" if ans.error else f"{ans.status}"
    return f"OOM -> {how}; the container {'is still up' if up else 'exited'}"


def case_stop(case):
    """`stop -t 10` one second into a 3 s activation: the activation answers or its connection
    drops cleanly, and the container exits by itself within the 10 s."""
    a = case.action()
    a.init(actions.SLOW[case.lang])
    a.unpause()
    box = {}

    def activation():
        box["answer"] = invoker.post(a.c.port, "/run", {**a.context(), "value": {"seconds": 3}}, 30.0)
        box["at"] = time.monotonic()

    t = threading.Thread(target=activation, daemon=True)
    sent = time.monotonic()
    t.start()
    time.sleep(1.0)
    stop_at = time.monotonic()
    proc = a.c.stop(10)
    stopped = time.monotonic() - stop_at
    t.join(30)
    if t.is_alive():
        raise CaseFailed("the /run sent before the stop never ended (30 s)")
    ans = box["answer"]
    state = a.c.state()
    logs = {rule: col.collect(wait_for_sentinel=ans.error is None and ans.status == 200)
            for rule, col in a.collectors.items()}
    answered = box["at"] - sent
    case.note(f"/run: {ans}, {answered:.2f} s after it was sent")
    case.note(f"stop -t 10 returned after {stopped:.2f} s (rc {proc.returncode}); exit code "
              f"{state.get('ExitCode')}, status {state.get('Status')}")
    for rule, got in logs.items():
        case.note(f"  {got.summary()}: {[line for _, line in got.lines][:4]}")
    if invoker.alive(state):
        raise CaseFailed("the container still runs after stop")
    if stopped >= 10:
        raise CaseFailed(f"the container did not exit by itself: stop took {stopped:.1f} s (SIGKILL at 10 s)")
    if ans.error is None:
        expect(ans, 200, "the activation during the stop",
               check=lambda b: isinstance(b, dict) and "slept" in b)
        check_logs(logs, actions.SLOW_LOGS, "the activation during the stop")
        how = f"answered 200 after {answered:.1f} s, logs complete"
    else:
        how = f"connection dropped ({ans.error}) after {answered:.1f} s"
    return f"{how}; the container exited {stopped:.1f} s after stop (exit code {state.get('ExitCode')})"


def case_whoami(case):
    """The action runs as a non-root user and can write its working directory and /tmp."""
    a = case.action()
    a.init(actions.WHOAMI[case.lang])
    ans, logs = a.run({})
    body = expect(ans, 200, "whoami", check=lambda b: isinstance(b, dict) and "uid" in b)
    problems = []
    if body["uid"] == 0:
        problems.append("uid 0")
    for where in ("wrote_cwd", "wrote_tmp"):
        if body.get(where) is not True:
            problems.append(f"{where}: {body.get(where)}")
    if problems:
        raise CaseFailed(f"{'; '.join(problems)} ({json.dumps(body)})")
    check_logs(logs, {"stdout": [], "stderr": []}, "whoami")
    return f"uid {body['uid']} gid {body['gid']}, working directory {body['cwd']} and /tmp writable"


def case_figures(case, samples=3):
    """Cold starts for the printed figures (not asserted)."""
    for _ in range(samples):
        a = case.action()
        a.init(actions.HELLO[case.hello_key])
        init_s = a.init_answered - a.c.run_started
        time.sleep(0.5)
        usage, rss = a.c.memory()
        ans, _ = a.run({"name": "figures"})
        expect(ans, 200, "figures")
        case.suite.figure(case.runtime, a.c.run_returned - a.c.run_started, init_s, init_s + ans.seconds,
                          usage, rss)
        a.c.remove()
    return f"{samples} more cold starts measured"


SMOKE_CASES = [("hello", lambda c: case_hello(c, 2))]
FULL_CASES = [
    ("hello", lambda c: case_hello(c, 20)),
    ("context", case_context),
    ("big-output", case_big_output),
    ("errors", case_errors),
    ("zip", case_zip),
    ("oom", case_oom),
    ("stop", case_stop),
    ("whoami", case_whoami),
    ("figures", case_figures),
]


# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, engine):
        self.engine = engine
        self.pausing = None if os.environ.get("E2E_PAUSE", "1") != "0" else False
        self.results = []  # (status, label, detail)
        self.figures = {}  # runtime -> list of samples

    def check_pause(self, c):
        """Once: does pause (the cgroup freezer) work here? Else say so and run without."""
        if self.pausing is not None:
            return
        try:
            c.pause()
        except EngineError as e:
            self.pausing = False
            print(f"note: {self.engine.kind} pause does not work here ({e}); activations run "
                  f"without pausing", flush=True)
            return
        frozen = c.freezer_state()
        probe = invoker.post(c.port, "/e2e-pause-probe", {}, 0.5)
        c.unpause()
        self.pausing = True
        print(f"note: {self.engine.kind} pause works: freezer {frozen or '?'}; a request to the "
              f"paused container: {probe}", flush=True)

    def figure(self, runtime, started_s, init_s, run_s, usage, rss):
        self.figures.setdefault(runtime, []).append(
            {"start": started_s, "init": init_s, "run": run_s, "usage": usage, "rss": rss})

    def record(self, status, label, detail, notes=()):
        self.results.append((status, label, detail))
        print(f"{status:<4} {label}: {detail}", flush=True)
        for n in notes:
            print(f"       {n}", flush=True)

    def run_case(self, runtime, name, fn):
        case = Case(self, runtime, name)
        label = f"{runtime}/{name}"
        try:
            detail = fn(case)
            self.record("ok", label, detail, case.notes)
        except CaseSkipped as e:
            self.record("skip", label, str(e), case.notes)
        except CaseFailed as e:
            self.record("FAIL", label, str(e), case.notes)
        except (EngineError, OSError, ValueError, KeyError, TypeError) as e:
            self.record("FAIL", label, f"{type(e).__name__}: {e}",
                        list(case.notes) + traceback.format_exc().splitlines()[-6:])
        finally:
            case.cleanup()

    def print_figures(self):
        if not self.figures:
            return
        print("\nFigures (not asserted; median of the cold starts, min-max):")
        print(f"  {'image':<34} {'n':>2}  {'`run -d` returns':>20}  {'run -> /init answer':>20}  "
              f"{'run -> 1st /run answer':>22}  {'memory after /init (usage / rss)':>34}")
        for runtime, samples in self.figures.items():
            def span(key, scale, unit, fmt="{:.0f}"):
                vals = [s[key] * scale for s in samples if s[key] is not None]
                if not vals:
                    return "-"
                return (fmt.format(statistics.median(vals)) + f" {unit} ("
                        + fmt.format(min(vals)) + "-" + fmt.format(max(vals)) + ")")
            mem = f"{span('usage', 1 / 1e6, 'MB', '{:.1f}')} / {span('rss', 1 / 1e6, 'MB', '{:.1f}')}"
            print(f"  {IMAGE_PREFIX + '-' + runtime + ':' + IMAGE_TAG:<34} {len(samples):>2}  "
                  f"{span('start', 1000, 'ms'):>20}  {span('init', 1000, 'ms'):>20}  "
                  f"{span('run', 1000, 'ms'):>22}  {mem:>34}")


def run_manifest(suite):
    """deploy/runtimes.json: one result per group of checks (the file, each kind, the kinds)."""
    groups = {}
    for group, passed, name, detail in manifest.check(ROOT):
        groups.setdefault(group, []).append((passed, name, detail))
    for group, checks in groups.items():
        failed = [f"{name} ({detail})" if detail else name for passed, name, detail in checks if not passed]
        if failed:
            suite.record("FAIL", f"runtimes.json/{group}", "; ".join(failed))
        else:
            said = [name.split(": ", 1)[-1] for _, name, _ in checks if "make images" in name or "starts from" in name]
            suite.record("ok", f"runtimes.json/{group}", f"{len(checks)} checks" + (": " + "; ".join(said) if said else ""))


def run_selftest(suite):
    for name, passed, detail in selftest.cases():
        suite.record("ok" if passed else "FAIL", f"harness/{name}", "as the invoker would" if passed else detail)


def main(argv):
    if argv[:1] == ["selftest"]:
        suite = Suite(engine=None)
        run_selftest(suite)
        return finish(suite, "selftest")
    if argv[:1] == ["manifest"]:
        suite = Suite(engine=None)
        run_manifest(suite)
        return finish(suite, "manifest")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=("smoke", "full"), default="smoke")
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("runtimes", nargs="*", default=["python", "nodejs", "php"])
    args = ap.parse_args(argv)
    for rt in args.runtimes:
        if rt not in RUNTIMES:
            ap.error(f"unknown runtime {rt!r} ({', '.join(RUNTIMES)})")
    only = {c for c in args.only.split(",") if c}
    cases = SMOKE_CASES if args.suite == "smoke" else FULL_CASES
    suite = Suite(invoker.Engine())
    print(f"e2e: {args.suite} suite, {suite.engine.kind} ({' '.join(suite.engine.base)}), "
          f"runtimes {' '.join(args.runtimes)}", flush=True)
    if args.suite == "full" and (not only or "selftest" in only):
        run_selftest(suite)
    if args.suite == "full" and (not only or "manifest" in only):
        run_manifest(suite)
    for rt in args.runtimes:
        image = f"{IMAGE_PREFIX}-{rt}:{IMAGE_TAG}"
        print(f"---- {rt}: {image}", flush=True)
        if not suite.engine.image_exists(image):
            suite.record("FAIL", f"{rt}", f"image {image} is not built (make images)")
            continue
        for name, fn in cases:
            if only and name not in only:
                continue
            if rt in DROPIN and (name, fn) not in SMOKE_CASES:
                suite.record("skip", f"{rt}/{name}", "the drop-in image runs the smoke cases only")
                continue
            suite.run_case(rt, name, fn)
    suite.print_figures()
    return finish(suite, "e2e")


def finish(suite, what):
    counts = {s: sum(1 for r in suite.results if r[0] == s) for s in ("ok", "FAIL", "skip")}
    failed = [label for status, label, _ in suite.results if status == "FAIL"]
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    print(f"\n{what}: {counts['ok']} passed, {counts['FAIL']} failed, {counts['skip']} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
