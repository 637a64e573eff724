"""The harness's log rules on made-up log files, so that a pass of the image cases means what it
says: each rule stops where the invoker's would, and a proxy fault shows as a failure."""

import json
import os
import tempfile

from invoker import SENTINEL, Collector, LogFile

TS = "2026-01-01T00:00:00.000000000+00:00"


def k8s(stream, tag, text):
    return f"{TS} {stream} {tag} {text}\n"


def jsonfile(stream, text):
    return json.dumps({"log": text, "stream": stream, "time": "2026-01-01T00:00:00Z"}) + "\n"


def collect_all(content, fmt, rule, activations, wait=True):
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".log") as f:
        f.write(content)
    try:
        col = Collector(LogFile(f.name, fmt), rule)
        return [col.collect(wait_for_sentinel=wait) for _ in range(activations)]
    finally:
        os.unlink(f.name)


def cases():
    """(name, passed, detail) for each property."""
    out = []
    framed = (k8s("stdout", "F", "one") + k8s("stdout", "P", "long ") + k8s("stdout", "F", "line")
              + k8s("stderr", "F", "err") + k8s("stdout", "F", SENTINEL) + k8s("stderr", "F", SENTINEL)
              + k8s("stdout", "F", "two") + k8s("stdout", "F", SENTINEL) + k8s("stderr", "F", SENTINEL))
    for rule in ("docker", "kubernetes"):
        a, b = collect_all(framed, "k8s-file", rule, 2)
        out.append((f"{rule}: two activations split at their sentinels, P records joined",
                    a.complete and b.complete and a.stream("stdout") == ["one", "long line"]
                    and a.stream("stderr") == ["err"] and b.stream("stdout") == ["two"] and not b.stream("stderr"),
                    f"{a.lines} / {b.lines}"))
    # A sentinel glued to an unterminated last line (a proxy that forgot the newline): Docker's
    # rule still stops, but drops the line; Kubernetes' rule never sees a sentinel line.
    glued = (k8s("stdout", "P", "last") + k8s("stdout", "F", SENTINEL) + k8s("stderr", "F", SENTINEL))
    (d,) = collect_all(glued, "k8s-file", "docker", 1)
    out.append(("docker: a glued sentinel ends the activation and loses the line",
                d.complete and d.stream("stdout") == [], f"{d.lines}, {d.ended}"))
    (k,) = collect_all(glued, "k8s-file", "kubernetes", 1, wait=False)
    out.append(("kubernetes: a glued sentinel is not a sentinel line",
                not k.complete and k.stream("stdout") == ["last" + SENTINEL], f"{k.lines}, {k.ended}"))
    # One sentinel missing: the collection ends by the idle timeout, incomplete.
    (m,) = collect_all(k8s("stdout", "F", "x") + k8s("stdout", "F", SENTINEL), "k8s-file", "kubernetes", 1)
    out.append(("kubernetes: a missing sentinel ends in the idle timeout", not m.complete and "idle" in m.ended,
                m.ended))
    # A proxy line after the sentinel belongs to the next activation.
    late = (k8s("stdout", "F", SENTINEL) + k8s("stderr", "F", SENTINEL) + k8s("stderr", "F", "proxy: late"))
    first, second = collect_all(late, "k8s-file", "docker", 2, wait=False)
    out.append(("a line after the sentinels is the next activation's", first.complete and not first.lines
                and second.stream("stderr") == ["proxy: late"], f"{first.lines} / {second.lines}"))
    # Docker's json-file: partial records have no newline at the end of "log".
    js = (jsonfile("stdout", "half ") + jsonfile("stdout", "and half\n") + jsonfile("stdout", SENTINEL + "\n")
          + jsonfile("stderr", SENTINEL + "\n"))
    (j,) = collect_all(js, "json-file", "docker", 1)
    out.append(("json-file: partial records joined", j.complete and j.stream("stdout") == ["half and half"],
                f"{j.lines}"))
    return out
