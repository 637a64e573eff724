"""The bench's machinery: processes, clients, timing loops and what /proc and strace tell.

Nothing here knows what is measured or what the targets are (measure.py, report.py).

Processes:  Proxy (target/release/actionloop), Hop (examples/hop.rs, the HTTP floor), PipeLoop
            (a program speaking ActionLoop's pipes: the floor loop, the repo's launcher, hop --pipe).
Clients:    Client, one lean HTTP/1.1 client for the proxy and the hop alike, either on one
            kept connection or on a fresh connection per request.
Timing:     interleave(), rounds of batches where every contender takes its turn.
/proc:      cpu_us(), status_kib(), children(), tree_rss_kib(), environ().
Packages:   pip_install_target(), npm_install(), write_wheel(): what the bench provides itself.
strace:     PerfTrace (perf stat on tracepoints) or Strace, attached to a running process, counting its system calls.
"""

import base64
import fcntl
import gc
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIB = 1024
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The bench itself broke (a process died, an answer was wrong): the run stops."""


# ---------------------------------------------------------------------------------------------
# /proc


def cpu_us(pid):
    """utime + stime of process `pid` (all its threads, not its children), in µs.

    /proc/PID/stat counts in clock ticks (10 ms here): a run must be long enough for its delta
    to dwarf that (see measure.cpu_per_activation)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) * 1e6 / CLK_TCK


def cpu_ns_precise(pid):
    """The same from /proc/PID/task/*/schedstat, in ns: threads alive now only, but exact."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def status_kib(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...), in KiB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children(pid):
    """The pids of the direct children of `pid`."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def descendants(pid):
    """`pid` and every process below it, parents first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children(p))
    return out


def tree_rss_kib(pid):
    """(sum of VmRSS over `pid` and its descendants in KiB, how many processes): pages they
    share (the interpreter's libraries) are counted once per process, as the kernel does for
    each."""
    rss = [status_kib(p, "VmRSS") for p in descendants(pid)]
    rss = [r for r in rss if r is not None]
    return sum(rss), len(rss)


def environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def tracer_pid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------------------------
# the machine and the interpreters


def first_line(argv, cwd=None, env=None):
    try:
        out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def resolve_interpreter(name, ask):
    """The real executable behind `name` on PATH, asked of the interpreter itself (`ask` makes
    it print its own path): a shim in front of it, such as pyenv's bash script for python3,
    would add tens of ms to every start. Returns (path, how it was found) or (None, why)."""
    found = shutil.which(name)
    if found is None:
        return None, "%s not found on PATH" % name
    real = first_line([found] + ask)
    if real and os.path.isabs(real) and os.access(real, os.X_OK):
        how = "asked %s" % found if os.path.realpath(found) != os.path.realpath(real) else "on PATH"
        return real, how
    return os.path.realpath(found), "resolved %s (the interpreter did not say its path)" % found


def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "kernel": platform.release(),
        "system": platform.platform(),
        "bench_python": platform.python_version(),
    }


def cpu_meter():
    """(CPU seconds every process used, CPU seconds this bench and its waited-for children used,
    wall seconds of CPU the machine had): read twice, the differences tell how much of the
    machine others took while the bench ran."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    busy = sum(fields[:8]) - idle  # up to steal; guest time is counted in user already
    t = os.times()
    return busy / CLK_TCK, t.user + t.system + t.children_user + t.children_system, (busy + idle) / CLK_TCK


def git_describe():
    return first_line(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=10"])


# ---------------------------------------------------------------------------------------------
# statistics


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def quartiles(xs):
    """(p25, p75), inclusive method: meaningful from 2 values on."""
    if len(xs) < 2:
        return (xs[0], xs[0]) if xs else (float("nan"), float("nan"))
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def summary(xs):
    """Median, quartiles and extremes of a list (round medians, usually)."""
    p25, p75 = quartiles(xs)
    return {"median": median(xs), "p25": p25, "p75": p75, "min": min(xs), "max": max(xs), "n": len(xs)}


# ---------------------------------------------------------------------------------------------
# processes


def _stop(proc, grace=5.0):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """target/release/actionloop on a free loopback port, working directory a fresh temp dir.

    `spawned` is the perf_counter() reading just before the spawn. `parent`: where that temp
    dir is made (what sits above it, a node_modules for one, is found from its action folders)."""

    def __init__(self, binary, lang, interpreter, env=None, parent=None):
        self.dir = tempfile.mkdtemp(prefix="actionloop-bench-", dir=parent)
        full = dict(os.environ)
        for k in ("OW_CONCURRENCY", "__OW_ALLOW_CONCURRENT", "RUST_LOG", "OW_PREWARM", "GLIBC_TUNABLES",
                  "OW_PRELOAD", "OW_ENABLE_INIT_INSTALL"):
            full.pop(k, None)
        full["OW_SHUTDOWN_GRACE_SECONDS"] = "1"
        full["OW_INTERPRETER"] = interpreter
        full.update(env or {})
        self.port = free_port()
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        with open(self.stderr_path, "wb") as err:
            self.spawned = time.perf_counter()
            # stdout carries only the activation sentinels; stderr is kept for failures.
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--runtime", lang],
                cwd=self.dir, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        self.pid = self.proc.pid

    def wait_port(self, every=0.001, timeout=15.0):
        """Connect-retry every `every` s until the port accepts; returns the connected socket."""
        deadline = time.perf_counter() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError("the proxy exited (%s): %s" % (self.proc.returncode, self.stderr()))
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                s.connect(("127.0.0.1", self.port))
                return s
            except ConnectionRefusedError:
                s.close()
                if time.perf_counter() > deadline:
                    raise BenchError("the proxy did not open port %d: %s" % (self.port, self.stderr()))
                time.sleep(every)

    def child(self):
        kids = children(self.pid)
        return kids[0] if kids else None

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read()[-6000:].decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [l for l in text.splitlines() if l.strip() and "XXX_THE_END_OF_A_WHISK" not in l]
        return " | ".join(lines[-6:])

    def close(self):
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Hop:
    """examples/hop.rs: the HTTP floor, answering {"ok":true} or (echo) the request body."""

    def __init__(self, binary, echo):
        argv = [binary] + (["--echo"] if echo else [])
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("port "):
            _stop(self.proc)
            raise BenchError("%s did not start (it said %r)" % (binary, line))
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def close(self):
        _stop(self.proc)
        self.proc.stdout.close()


def _grow_pipe(fd):
    """The proxy grows its pipes to 1 MiB (src/child); the pipe loops get the same."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), MIB)
    except OSError:
        pass


class PipeLoop:
    """A program on ActionLoop's pipes, driven from here: a line in on its stdin, a line back
    on its fd 3. The floor loop, the repo's launcher alone, or hop --pipe."""

    def __init__(self, argv, cwd=None, env=None):
        answers_r, answers_w = os.pipe()
        _grow_pipe(answers_w)
        try:
            # fd 3 of the child must be the write end: pass_fds keeps it when os.pipe() gave 3,
            # else it is dup2'ed onto 3 after the fork (close_fds off: it would close the new 3;
            # this process's other descriptors are close-on-exec anyway).
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, bufsize=0,
                pass_fds=(answers_w,) if answers_w == 3 else (),
                close_fds=answers_w == 3,
                preexec_fn=None if answers_w == 3 else (lambda: os.dup2(answers_w, 3)),
            )
        finally:
            os.close(answers_w)
        self.pid = self.proc.pid
        self.stdin = self.proc.stdin.fileno()
        _grow_pipe(self.stdin)
        self.answers = answers_r
        self.buf = bytearray(64 * KIB)

    def call(self, line):
        """Sends one line (ending in \\n); returns the answer line without its \\n, as a view
        into a buffer that the next call reuses. Reads straight into that buffer (a buffered
        file's readline costs more than the pipes themselves at 1 MiB)."""
        view = memoryview(line)
        while view:
            view = view[os.write(self.stdin, view):]
        buf, have = self.buf, 0
        while True:
            if have == len(buf):
                buf = self.buf = buf + bytearray(len(buf))
            n = os.readv(self.answers, [memoryview(buf)[have:]])
            if n == 0:
                raise BenchError("%s exited (status %s)" % (self.proc.args[0], self.proc.poll()))
            end = buf.find(b"\n", have, have + n)
            have += n
            if end >= 0:
                if end != have - 1:
                    raise BenchError("%s wrote more than one line" % self.proc.args[0])
                return memoryview(buf)[:end]

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.answers)


# ---------------------------------------------------------------------------------------------
# packages the bench provides itself


def _tail(out):
    text = ((out.stdout or "") + (out.stderr or "")).strip()
    return text.splitlines()[-1][:300] if text else "exit status %d" % out.returncode


def quiet_run(argv, cwd=None, env=None, timeout=300):
    """Runs `argv` to its end; None when it succeeded, else its last line."""
    try:
        out = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if out.returncode == 0 else _tail(out)


def pip_install_target(python, requirement, target):
    """`python -m pip install --target target requirement`; None, or why it failed."""
    os.makedirs(target, exist_ok=True)
    return quiet_run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                      "--target", target, requirement])


def npm_install(prefix, package):
    """npm install of `package` into prefix/node_modules (no package.json, no lock file written);
    None, or why it failed."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found on PATH"
    os.makedirs(prefix, exist_ok=True)
    return quiet_run([npm, "install", "--prefix", prefix, "--no-save", "--no-package-lock", "--no-audit",
                      "--no-fund", "--loglevel=error", package], cwd=prefix)


def write_wheel(folder, name, version, modules):
    """A pure-Python wheel of distribution `name` in `folder`, pip-installable offline:
    `modules` {path in the wheel: text}, plus the .dist-info METADATA, WHEEL and RECORD (with
    each file's sha256). Returns its path."""
    info = "%s-%s.dist-info" % (name, version)
    files = {path: text.encode() for path, text in modules.items()}
    files[info + "/METADATA"] = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (
        name.replace("_", "-"), version)).encode()
    files[info + "/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: actionloop-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    lines.append(info + "/RECORD,,")
    files[info + "/RECORD"] = ("\n".join(lines) + "\n").encode()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "%s-%s-py3-none-any.whl" % (name, version))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for member, data in files.items():
            whl.writestr(member, data)
    return path


# ---------------------------------------------------------------------------------------------
# the client


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class Client:
    """One lean HTTP/1.1 client, the same for the proxy and the hop. `keep` holds one connection
    open across requests; without it each request connects, POSTs (Accept: application/json,
    Content-Length), reads the whole answer and closes, as the OpenWhisk invoker does.

    post() returns (status, body) where body is a memoryview into a buffer reused by the next
    request: compare or copy it before posting again."""

    def __init__(self, port, keep):
        self.port = port
        self.keep = keep
        self.sock = None
        self.pending = b""
        self.buf = bytearray(64 * KIB)
        self.heads = {}

    def head(self, path, length):
        key = (path, length)
        head = self.heads.get(key)
        if head is None:
            head = (
                "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path, self.port, length)
            ).encode()
            self.heads[key] = head
        return head

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect(("127.0.0.1", self.port))
        return s

    def post(self, path, body):
        if self.sock is None:
            self.sock = self._connect()
            self.pending = b""
        sock = self.sock
        try:
            head = self.head(path, len(body))
            sent = sock.sendmsg([head, body])
            if sent < len(head) + len(body):
                rest = (head + bytes(body))[sent:]
                sock.sendall(rest)
            return self._answer(sock)
        finally:
            if not self.keep:
                self.sock = None
                sock.close()

    def _answer(self, sock):
        data = self.pending
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(64 * KIB)
            if not chunk:
                raise BenchError("the server closed the connection before answering")
            data += chunk
        m = _CONTENT_LENGTH.search(data, 0, end + 2)
        if m is None:
            raise BenchError("an answer without Content-Length: %r" % data[:end][:200])
        status = int(data[9:12])
        n = int(m.group(1))
        start = end + 4
        have = len(data) - start
        if have >= n:
            self.pending = data[start + n:]
            return status, memoryview(data)[start:start + n]
        if len(self.buf) < n:
            self.buf = bytearray(n)
        view = memoryview(self.buf)
        view[:have] = data[start:]
        while have < n:
            k = sock.recv_into(view[have:n], n - have)
            if k == 0:
                raise BenchError("the server closed the connection in the middle of an answer")
            have += k
        self.pending = b""
        return status, view[:n]

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# ---------------------------------------------------------------------------------------------
# timing


class Contender:
    """One thing timed in the rounds: `call(arg)` must return what `want` says it should."""

    def __init__(self, name, call, arg, want):
        self.name, self.call, self.arg, self.want = name, call, arg, want
        self.medians = []  # one per round, ns


def _batch(contender, count):
    clock = time.perf_counter_ns
    call, arg = contender.call, contender.arg
    samples = [0] * count
    answer = None
    for i in range(count):
        t0 = clock()
        answer = call(arg)
        samples[i] = clock() - t0
    if answer != contender.want:
        raise BenchError("%s answered %d bytes that are not the expected %d (%r...)" % (
            contender.name, len(answer), len(contender.want), bytes(answer[:80])))
    return samples


def interleave(contenders, rounds, batch, warmup):
    """`rounds` rounds; in each, every contender runs `batch` timed calls back to back and
    keeps their median. The order turns from round to round (each contender goes first, last
    and in between alike), so that the machine's swings land on every contender.
    Fills each contender's `medians` (ns)."""
    for c in contenders:
        _batch(c, warmup)
    gc.collect()
    gc.disable()
    try:
        k = len(contenders)
        for r in range(rounds):
            order = contenders[r % k:] + contenders[:r % k]
            if (r // k) % 2:
                order.reverse()
            for c in order:
                c.medians.append(statistics.median(_batch(c, batch)))
    finally:
        gc.enable()


def repeat(call, arg, count):
    """`count` calls, untimed, with no check but the status."""
    for _ in range(count):
        call(arg)


# ---------------------------------------------------------------------------------------------
# system call counters: strace, perf


class Attached:
    """A tool that counts a running process's system calls, attached while something is done
    to it: with Tool(pid) as t: ...drive...;  then t.counts() -> {syscall: (calls, errors)}."""

    NAME, SUFFIX = "", ""

    def __init__(self, pid):
        self.pid = pid
        self.out = tempfile.NamedTemporaryFile(prefix="actionloop-%s-" % self.NAME, suffix=self.SUFFIX,
                                               delete=False)
        self.out.close()
        self.proc = None

    def command(self):
        raise NotImplementedError

    def attached(self):
        """Whether the tool counts yet (asked every 5 ms after its start)."""
        raise NotImplementedError

    def released(self):
        """Called once the tool has stopped."""

    def __enter__(self):
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.perf_counter() + 10
        while not self.attached():
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self._kill()
                raise BenchError("%s could not attach to %d: %s" % (self.NAME, self.pid, err.strip()[:300]))
            time.sleep(0.005)
        return self

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._kill()
        self.proc.stderr.close()
        self.released()
        return False


class Strace(Attached):
    """strace -c -f: every call and its failures, but it stops the process at each call."""

    NAME, SUFFIX = "strace", ".txt"

    @staticmethod
    def available():
        return shutil.which("strace") is not None

    def command(self):
        return ["strace", "-c", "-f", "-p", str(self.pid), "-o", self.out.name]

    def attached(self):
        # Once the kernel says so, and its threads just after: a short pause.
        if tracer_pid(self.pid) != self.proc.pid:
            return False
        time.sleep(0.1)
        return True

    def released(self):
        # the process being traced goes on; give it a moment to be released
        deadline = time.perf_counter() + 5
        while tracer_pid(self.pid) and time.perf_counter() < deadline:
            time.sleep(0.005)

    def counts(self):
        """{syscall: (calls, failed calls)} from strace's -c table."""
        out = {}
        row = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")
        try:
            with open(self.out.name) as f:
                for line in f:
                    m = row.match(line)
                    if m and m.group(3) != "total":
                        calls, errors = out.get(m.group(3), (0, 0))
                        out[m.group(3)] = calls + int(m.group(1)), errors + int(m.group(2) or 0)
        finally:
            os.unlink(self.out.name)
        return out


class PerfTrace(Attached):
    """perf stat on the syscall tracepoints of every thread: no failed calls, but no stops.

    Preferred to strace when the kernel lets us: strace stops the proxy at every call, so the
    child's answer is usually in its pipe before the proxy asks for it, and the waits a real
    run makes (an epoll_wait for the answer, a read that finds nothing yet) go uncounted."""

    NAME, SUFFIX = "perf", ".csv"
    # Every call in all, and by name the ones a relay makes. Not all ~360 syscall tracepoints:
    # perf closes each counter after an RCU grace period, which for all of them takes seconds.
    NAMED = ("read", "write", "readv", "writev", "recvfrom", "sendto", "sendmsg", "recvmsg", "epoll_wait",
             "epoll_pwait", "epoll_ctl", "poll", "ppoll", "accept4", "close", "setsockopt", "shutdown",
             "futex", "splice", "vmsplice", "fcntl", "ioctl")
    EVENTS = ("raw_syscalls:sys_enter",) + tuple("syscalls:sys_enter_" + n for n in NAMED)

    def __init__(self, pid):
        super().__init__(pid)
        self.seen, self.steady = -1, 0

    @staticmethod
    def available():
        if shutil.which("perf") is None:
            return False
        done = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        first = done.stderr.decode(errors="replace").strip().split(",")[0]
        return done.returncode == 0 and first.isdigit() and int(first) > 0

    def command(self):
        return ["perf", "stat", "-x,", "-e", ",".join(self.EVENTS), "-p", str(self.pid), "-o", self.out.name]

    def attached(self):
        # Once perf holds its counters and has stopped opening more (50 ms without a new one).
        n = perf_events_open(self.proc.pid)
        self.steady = self.steady + 1 if n == self.seen and n > 0 else 0
        self.seen = n
        return self.steady >= 10

    def counts(self):
        """{syscall: (calls, 0)} from perf's CSV lines (`count,,event,...`); the calls not named
        in NAMED as "other"."""
        out, total = {}, 0
        try:
            with open(self.out.name) as f:
                for line in f:
                    fields = line.strip().split(",")
                    if len(fields) < 3 or not fields[0].isdigit():
                        continue
                    n = int(fields[0])
                    if fields[2] == "raw_syscalls:sys_enter":
                        total += n
                    elif fields[2].startswith("syscalls:sys_enter_") and n:
                        name = fields[2][len("syscalls:sys_enter_"):]
                        out[name] = (out.get(name, (0, 0))[0] + n, 0)
        finally:
            os.unlink(self.out.name)
        other = total - sum(calls for calls, _ in out.values())
        if other > 0:
            out["other"] = (other, 0)
        return out


def perf_events_open(pid):
    """How many perf event descriptors process `pid` holds."""
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[perf_event]":
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def syscall_counter():
    """The way this machine counts a process's system calls: (class, how it is said), or None."""
    if PerfTrace.available():
        return PerfTrace, "perf stat on the syscall tracepoints"
    if Strace.available():
        return Strace, "strace -c -f"
    return None


# ---------------------------------------------------------------------------------------------
# many connections at once


def threads_at_once(count, prepare, work):
    """`count` threads: each runs prepare(i) (untimed), then all run work(i, prepared) from the
    same instant. Returns (seconds from the start to the last one's end, [work results])."""
    barrier = threading.Barrier(count + 1)
    results = [None] * count

    def run(i):
        try:
            state = prepare(i)
        except Exception as e:  # noqa: BLE001 - reported as the thread's result
            state, results[i] = None, e
        barrier.wait()
        if state is not None:
            try:
                results[i] = work(i, state)
            except Exception as e:  # noqa: BLE001
                results[i] = e
        barrier.wait()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    barrier.wait()
    took = time.perf_counter() - t0
    for t in threads:
        t.join()
    return took, results
