"""What an OpenWhisk invoker does to an action container, done again with the podman or docker CLI.

Read off apache/openwhisk (core/invoker .../docker/DockerContainer.scala, DockerContainerFactory,
.../kubernetes/KubernetesContainer.scala and KubernetesClient, common ApacheBlockingContainerClient,
Container.scala, ContainerProxy.scala, DockerToActivationLogStore); the reasons are in the comments.

- `start`: `run -d` with the invoker's flags (memory and swap limit, cpu shares, dropped
  capabilities, ulimits, pids limit, `__OW_API_HOST`), the image's ENTRYPOINT as it is.
- `post`: one new TCP connection per request, `Accept: application/json`; an answer without
  `Content-Length` counts as no answer; at most 1 MiB of a body is read; `/init` is retried every
  50 ms while the connection is refused, until its timeout.
- `Collector`: an activation's logs from the container's log file, from where the previous
  collection stopped, under the Docker rule (stop after two records that contain the sentinel)
  or the Kubernetes rule (stop after two lines equal to the sentinel); 10 MiB limit, 2 s idle
  timeout between records; or, after a developer error, only what is already in the file.
"""

import atexit
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
MIB = 1 << 20
# ActivationEntityLimit / the default allowedMaxPayloadSize: what the invoker reads of a body.
MAX_RESPONSE = 1 * MIB
# The default log limit of an action (LogLimit 10 MB, OpenWhisk's MB being 2^20 bytes).
LOG_LIMIT = 10 * MIB
# DockerContainer.logCollectingIdleTimeout, and its overall limit: max(5, limit in MB) * 2 s.
LOG_IDLE_TIMEOUT = 2.0
LOG_TOTAL_TIMEOUT = max(5, LOG_LIMIT // MIB) * 2.0
# How often the log file is polled while waiting for the sentinels.
LOG_POLL = 0.01
# The value every container gets as __OW_API_HOST; no action here calls it.
API_HOST = "https://openwhisk-e2e.invalid"


class Engine:
    """The container engine: podman (with this machine's runtime flags) or docker."""

    def __init__(self):
        kind = os.environ.get("ENGINE", "")
        if not kind:
            if shutil.which("docker") and _quiet(["docker", "info"]):
                kind = "docker"
            elif shutil.which("podman"):
                kind = "podman"
            else:
                raise SystemExit("e2e: neither a working Docker engine nor podman found")
        self.kind = kind
        self.scratch = tempfile.mkdtemp(prefix="actionloop-e2e-")
        atexit.register(shutil.rmtree, self.scratch, True)
        if kind == "podman":
            flags = os.environ.get("PODMAN_FLAGS", "--runtime runc --cgroup-manager cgroupfs")
            self.base = ["podman"] + shlex.split(flags)
            # nofile is the invoker's own ulimit; nproc is what this machine needs (podman's
            # default nproc limit cannot be set here), as scripts/engine.sh says.
            limits = os.environ.get(
                "PODMAN_LIMITS", "--ulimit nofile=1024:1024 --ulimit nproc=1000:1000"
            )
            self.limits = shlex.split(limits)
            if "nofile=1024:1024" not in limits:
                self.limits += ["--ulimit", "nofile=1024:1024"]
        elif kind == "docker":
            self.base = ["docker"]
            self.limits = ["--ulimit", "nofile=1024:1024"]
        else:
            raise SystemExit(f"e2e: ENGINE must be docker or podman, not {kind!r}")

    def run(self, *args, check=True, timeout=120):
        # In a scratch folder: podman's conmon writes a file "oom" into its working directory
        # when the container's cgroup sees an OOM kill.
        proc = subprocess.run(
            self.base + list(args), capture_output=True, text=True, timeout=timeout, cwd=self.scratch
        )
        if check and proc.returncode != 0:
            raise EngineError(
                f"{self.kind} {' '.join(args[:2])} failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}"
            )
        return proc

    def image_exists(self, image):
        return self.run("image", "inspect", image, check=False).returncode == 0


class EngineError(Exception):
    pass


def _quiet(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Container:
    """One action container, started as the invoker starts it."""

    def __init__(self, engine, image, name, memory_mb=256, env=None):
        self.engine = engine
        self.image = image
        self.name = name
        self.port = free_port()
        args = [
            "run", "-d", "--name", name,
            # ContainerFactory: cpu shares in proportion to the memory limit (here 256 MB of a
            # 2 GB invoker pool: 1024 / 8), the memory limit with no swap on top.
            "--cpu-shares", "128",
            "--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m",
            "-e", f"__OW_API_HOST={API_HOST}",
            "--cap-drop", "NET_RAW", "--cap-drop", "NET_ADMIN",
            *engine.limits,
            "--pids-limit", "1024",
        ]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if engine.kind == "podman":
            # The host network, as scripts/images.sh runs its containers: the proxy listens on a
            # free port of 127.0.0.1 (`--port`, after the image name: the ENTRYPOINT stays the
            # image's own) and the harness sends to no address but loopback.
            args += ["--network", "host", "--log-driver", "k8s-file", image, "--port", str(self.port)]
        else:
            args += [
                "--network", "bridge", "-p", f"127.0.0.1:{self.port}:8080",
                "--log-driver", "json-file", image,
            ]
        self.run_started = time.monotonic()
        engine.run(*args)
        self.run_returned = time.monotonic()
        self.log_format = "k8s-file" if engine.kind == "podman" else "json-file"
        fmt = "{{.HostConfig.LogConfig.Path}}" if engine.kind == "podman" else "{{.LogPath}}"
        self.log_path = self.inspect(fmt)
        self.paused = False

    def inspect(self, fmt):
        return self.engine.run("inspect", "--format", fmt, self.name).stdout.strip()

    def state(self):
        out = self.engine.run("inspect", "--format", "{{json .State}}", self.name, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return {}

    def running(self):
        """Up, paused or not (podman's State.Running is false while paused)."""
        return alive(self.state())

    def pause(self):
        self.engine.run("pause", self.name)
        self.paused = True

    def unpause(self):
        if self.paused:
            self.engine.run("unpause", self.name)
            self.paused = False

    def stop(self, seconds):
        return self.engine.run("stop", "-t", str(seconds), self.name, check=False, timeout=seconds + 60)

    def remove(self):
        self.engine.run("rm", "-f", "-t", "0", self.name, check=False)

    def exec(self, *cmd):
        return self.engine.run("exec", self.name, *cmd, check=False)

    def cgroup_dir(self, controller):
        """The container's cgroup folder for a v1 controller, or the v2 folder; None if unknown."""
        pid = self.state().get("Pid")
        if not pid:
            return None
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return f"/sys/fs/cgroup/{controller}{path}"
        for line in lines:
            if line.startswith("0::"):
                return "/sys/fs/cgroup" + line[3:]
        return None

    def memory(self):
        """The container's memory use: (usage, rss) in bytes, usage as `stats` shows it."""
        folder = self.cgroup_dir("memory")
        if folder:
            usage = _read_int(f"{folder}/memory.usage_in_bytes")
            if usage is None:
                usage = _read_int(f"{folder}/memory.current")
            stat = _read_stat(f"{folder}/memory.stat")
            rss = stat.get("total_rss", stat.get("rss", stat.get("anon")))
            if usage is not None:
                return usage, rss
        out = self.engine.run(
            "stats", "--no-stream", "--format", "{{.MemUsage}}", self.name, check=False
        ).stdout
        return _parse_size(out.split("/")[0]), None

    def freezer_state(self):
        folder = self.cgroup_dir("freezer")
        if folder and os.path.exists(f"{folder}/freezer.state"):
            with open(f"{folder}/freezer.state") as f:
                return f.read().strip()
        folder = self.cgroup_dir("")
        if folder and os.path.exists(f"{folder}/cgroup.freeze"):
            with open(f"{folder}/cgroup.freeze") as f:
                return "FROZEN" if f.read().strip() == "1" else "THAWED"
        return None

    def memory_events(self):
        """The kernel's OOM kill count for the container's memory cgroup (v1 memory.oom_control,
        v2 memory.events), or None."""
        folder = self.cgroup_dir("memory")
        if not folder:
            return None
        for name in ("memory.oom_control", "memory.events"):
            kills = _read_stat(f"{folder}/{name}").get("oom_kill")
            if kills is not None:
                return kills
        return None


def alive(state):
    return state.get("Running") is True or state.get("Paused") is True


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _read_stat(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                    out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out


def _parse_size(text):
    m = re.match(r"\s*([\d.]+)\s*([kKMGT]?i?B)", text)
    if not m:
        return None
    unit = m.group(2).upper().replace("I", "")
    scale = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}[unit]
    return int(float(m.group(1)) * scale)


class Answer:
    """What the invoker's HTTP client makes of one request."""

    def __init__(self, status=None, body=None, error=None, truncated=False, seconds=0.0, attempts=1):
        self.status = status
        self.body = body
        self.error = error  # None, or: refused, dropped, timeout, no Content-Length
        self.truncated = truncated
        self.seconds = seconds
        self.attempts = attempts

    def json(self):
        try:
            return json.loads(self.body)
        except (TypeError, ValueError):
            return None

    def __str__(self):
        if self.error:
            return f"no answer ({self.error})"
        body = self.body if len(self.body) <= 300 else self.body[:300] + f"... ({len(self.body)} chars)"
        return f"{self.status} {body}"


def post(port, path, value, timeout, retry_refused=False, retry_dropped=False):
    """POSTs `value` as JSON on a new connection, as ApacheBlockingContainerClient does."""
    data = json.dumps(value, separators=(",", ":")).encode()
    started = time.monotonic()
    deadline = started + timeout
    attempts = 0
    while True:
        attempts += 1
        left = max(0.001, deadline - time.monotonic())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=left)
        error = None
        try:
            conn.request(
                "POST",
                path,
                body=data,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length is None or not length.strip().isdigit():
                # A chunked answer (or none at all) is NoResponseReceived to the invoker.
                resp.read()
                return Answer(error="no Content-Length", seconds=time.monotonic() - started, attempts=attempts)
            n = int(length)
            raw = resp.read(min(n, MAX_RESPONSE))
            return Answer(
                status=resp.status,
                body=raw.decode("utf-8", "replace"),
                truncated=n > MAX_RESPONSE,
                seconds=time.monotonic() - started,
                attempts=attempts,
            )
        except ConnectionRefusedError:
            error = "refused"
        except (http.client.RemoteDisconnected, http.client.IncompleteRead, http.client.BadStatusLine,
                ConnectionResetError, BrokenPipeError):
            error = "dropped"
        except (socket.timeout, TimeoutError):
            return Answer(error="timeout", seconds=time.monotonic() - started, attempts=attempts)
        finally:
            conn.close()
        retry = (error == "refused" and retry_refused) or (error == "dropped" and retry_dropped)
        if retry and time.monotonic() + 0.05 < deadline:
            time.sleep(0.05)
            continue
        return Answer(error=error, seconds=time.monotonic() - started, attempts=attempts)


# ---------------------------------------------------------------- logs


class Record:
    """One record of the container's log file: a line, or a piece of one (partial)."""

    __slots__ = ("stream", "text", "partial", "raw")

    def __init__(self, stream, text, partial, raw):
        self.stream = stream
        self.text = text
        self.partial = partial
        self.raw = raw


def parse_record(fmt, raw):
    if fmt == "k8s-file":
        # "<RFC 3339 time> <stdout|stderr> <P|F> <content>": P, a piece of a longer line; F, the
        # line's end (conmon writes at most 8 KiB of content per record).
        parts = raw.split(" ", 3)
        while len(parts) < 4:
            parts.append("")
        return Record(parts[1], parts[3], parts[2] == "P", raw)
    # json-file: {"log": "...\n", "stream": ..., "time": ...}; a piece of a longer line (16 KiB)
    # has no newline at the end of "log".
    obj = json.loads(raw)
    text = obj.get("log", "")
    partial = not text.endswith("\n")
    return Record(obj.get("stream", "stdout"), text[:-1] if not partial else text, partial, raw)


class LogFile:
    def __init__(self, path, fmt):
        self.path = path
        self.fmt = fmt

    def records(self, offset):
        """The complete records from `offset` on: [(offset after the record, Record)]."""
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        pos = 0
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                break
            raw = data[pos:end].decode("utf-8", "replace")
            out.append((offset + end + 1, parse_record(self.fmt, raw)))
            pos = end + 1
        return out


class Collected:
    """One activation's logs as one rule collected them."""

    def __init__(self, rule):
        self.rule = rule
        self.lines = []  # [(stream, text)] in file order, sentinels left out
        self.sentinels = 0
        self.complete = False  # both sentinels seen
        self.ended = ""  # why the collection stopped
        self.seconds = 0.0
        self.bytes = 0
        self.records = 0

    def stream(self, name):
        return [text for s, text in self.lines if s == name]

    def summary(self):
        return (
            f"{self.rule}: {self.ended}, {len(self.lines)} lines / {self.records} records, "
            f"{self.bytes} bytes, {self.sentinels} sentinels, {self.seconds * 1000:.0f} ms"
        )


class Collector:
    """Reads one activation's logs at a time from the log file, from where the last one stopped.

    rule "docker": DockerContainer.logs: raw records of the file, until two records contain the
    sentinel (they are left out); records longer lines were split into are joined here.
    rule "kubernetes": KubernetesContainer.logs: whole lines, until two lines are the sentinel.
    Kubernetes' own reader resumes from the last line's timestamp; this one from a byte offset, so
    only the rule differs.
    """

    def __init__(self, logfile, rule):
        assert rule in ("docker", "kubernetes")
        self.logfile = logfile
        self.rule = rule
        self.offset = 0
        self.pending = {}  # stream -> the pieces of a line not yet ended

    def collect(self, wait_for_sentinel=True, into=None):
        """One activation's logs; `into` continues a collection that stopped short."""
        got = into or Collected(self.rule)
        started = time.monotonic()
        last_progress = started
        stop = None
        while stop is None:
            records = self.logfile.records(self.offset)
            for end, rec in records:
                got.bytes += len(rec.raw.encode()) + 1
                got.records += 1
                self.offset = end
                if got.bytes > LOG_LIMIT:
                    stop = "log limit reached (truncated)"
                    break
                self._take(rec, got)
                if got.sentinels == 2:
                    got.complete = True
                    stop = "two sentinels"
                    break
            if stop:
                break
            now = time.monotonic()
            if records:
                last_progress = now
            if not wait_for_sentinel:
                stop = "end of file (not waiting)"
            elif now - last_progress > LOG_IDLE_TIMEOUT:
                stop = f"idle timeout ({LOG_IDLE_TIMEOUT:.0f} s without a record)"
            elif now - started > LOG_TOTAL_TIMEOUT:
                stop = f"collection timeout ({LOG_TOTAL_TIMEOUT:.0f} s)"
            else:
                time.sleep(LOG_POLL)
        got.ended = f"{got.ended}, then {stop}" if got.ended else stop
        got.seconds += time.monotonic() - started
        return got

    def _take(self, rec, got):
        if self.rule == "docker" and SENTINEL in rec.raw:
            got.sentinels += 1
            return
        if rec.partial:
            self.pending[rec.stream] = self.pending.get(rec.stream, "") + rec.text
            return
        line = self.pending.pop(rec.stream, "") + rec.text
        if self.rule == "kubernetes" and line == SENTINEL:
            got.sentinels += 1
            return
        got.lines.append((rec.stream, line))


RULES = ("docker", "kubernetes")
