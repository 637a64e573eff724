"""The targets, each stated once, the verdicts, and the tables (text, markdown) and JSON.

Nothing is asserted: a missed target is printed as missed and the run still exits 0.
"""

import json
import math

from measure import PATTERN_TEXT, SIZES

# key: (what is judged, limit, unit, sense). Every limit the bench judges is here and only here.
TARGETS = {
    "ratio_60B": ("proxy / (hop + floor) at 60 B, each pattern", 1.10, "x", "<="),
    "ratio_1MiB": ("proxy / (hop + floor) at 1 MiB, each pattern", 1.15, "x", "<="),
    "cpu_60B": ("proxy CPU per 60 B activation, each pattern", 25.0, "us", "<="),
    "cpu_1MiB": ("proxy CPU per 1 MiB activation, each pattern", 600.0, "us", "<="),
    "syscalls_60B": ("proxy system calls per 60 B activation, kept connection", 8.0, "", "<="),
    "init_at_open": ("/init sent as the port opens, above the bare start", 10.0, "ms", "<="),
    "init_prewarmed_python": ("python /init, proxy up 1 s", 10.0, "ms", "<="),
    "preload_init": ("/init of an action importing the image's library, OW_PRELOAD naming it", 5.0, "ms", "<="),
    "peak_init_zip": ("proxy peak (VmHWM) at /init of a 48 MiB zip, per body byte", 1.5, "x", "<="),
    "peak_run_body": ("proxy peak (VmHWM) at a 100 MiB /run, above the body", 16.0, "MiB", "<="),
    "rss_idle": ("proxy RSS idle, after /init", 4.0, "MiB", "<="),
    "rss_after": ("proxy RSS after the 1 MiB traffic", 10.0, "MiB", "<="),
    "binary": ("release binary size", 4_000_000, "bytes", "<="),
    "sleep_scaling": ("4 connections, sleep-bound action: 4 children over 1", 3.0, "x", ">="),
    "answers_wrong": ("4 connections: answers not the request's own, or failed", 0, "", "<="),
}
RATIO_KEY = {"60 B": "ratio_60B", "1 MiB": "ratio_1MiB"}
CPU_KEY = {"60 B": "cpu_60B", "1 MiB": "cpu_1MiB"}


def limit_text(key):
    _, limit, unit, sense = TARGETS[key]
    sign = "<=" if sense == "<=" else ">="
    if unit == "x":
        return "%s %.2fx" % (sign, limit)
    if unit == "bytes":
        return "%s %.0f MB" % (sign, limit / 1e6)
    if key == "init_at_open":
        return "<= bare + %g ms" % limit
    if key == "peak_run_body":
        return "<= body + %g MiB" % limit
    return ("%s %g %s" % (sign, limit, unit)).rstrip()


def met(key, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    _, limit, _, sense = TARGETS[key]
    return value <= limit if sense == "<=" else value >= limit


def verdict_text(ok):
    return "-" if ok is None else ("met" if ok else "MISSED")


# ---------------------------------------------------------------------------------------------
# verdicts


def judge(results):
    """Every (target, subject, value, met) of a run; the tables read theirs from this list."""
    rows = []

    def add(key, subject, value):
        rows.append({"target": key, "subject": subject, "value": value, "met": met(key, value)})

    add("binary", "actionloop", results["proxy"]["bytes"])
    for lang, r in results["languages"].items():
        for pattern, sizes in r.get("latency", {}).items():
            for size, key in RATIO_KEY.items():
                if size in sizes:
                    add(key, "%s %s" % (lang, pattern), sizes[size]["ratio"]["median"])
        for pattern, sizes in r.get("cpu", {}).items():
            for size, key in CPU_KEY.items():
                if size in sizes:
                    add(key, "%s %s" % (lang, pattern), sizes[size]["proxy_us"])
        sc = r.get("syscalls", {}).get("keep-alive", {}).get("60 B")
        if sc:
            add("syscalls_60B", "%s keep-alive" % lang, sc["proxy"]["per_request"])
        init = r.get("init")
        if init:
            add("init_at_open", lang, init["at_open"]["median"] - init["bare"]["median"])
            if lang == "python":
                add("init_prewarmed_python", lang, init["prewarmed"]["median"])
        pre = r.get("preload")
        if pre:
            add("preload_init", "%s %s" % (lang, pre["library"]), pre["with"]["median"])
        mem = r.get("memory", {})
        if "init_zip" in mem:
            m = mem["init_zip"]
            add("peak_init_zip", lang, m["peak_kib"] * 1024.0 / m["body_bytes"])
        if "run_body" in mem:
            m = mem["run_body"]
            add("peak_run_body", lang, (m["peak_kib"] * 1024.0 - m["body_bytes"]) / 2**20)
        rss = r.get("rss", {})
        if rss.get("idle_kib") is not None:
            add("rss_idle", lang, rss["idle_kib"] / 1024.0)
        if rss.get("after_traffic_kib") is not None:
            add("rss_after", lang, rss["after_traffic_kib"] / 1024.0)
        tp = r.get("throughput")
        if tp:
            add("answers_wrong", lang, sum(t["wrong"] + t["failed"] for t in tp))
            sleep = {t["children"]: t["req_per_s"] for t in tp if t["action"] == "sleep"}
            if 1 in sleep and 4 in sleep:
                add("sleep_scaling", lang, sleep[4] / sleep[1])
        if r.get("error"):
            rows.append({"target": "bench", "subject": lang, "value": r["error"], "met": False})
    return rows


def _lookup(verdicts):
    return {(v["target"], v["subject"]): v for v in verdicts}


# ---------------------------------------------------------------------------------------------
# tables


class Table:
    def __init__(self, title, headers, notes=(), left=1):
        """`left`: how many columns, from the first, are text (aligned left); the rest are figures."""
        self.title, self.headers, self.rows, self.notes = title, headers, [], list(notes)
        self.left = left

    def add(self, *cells):
        self.rows.append(["" if c is None else str(c) for c in cells])

    def text(self):
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
                  for i, h in enumerate(self.headers)]

        def line(cells):
            return "  ".join(c.ljust(w) if i < self.left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        head = line(self.headers)
        out = [self.title, head, "-" * len(head)] + [line(r) for r in self.rows]
        out += ["  " + n for n in self.notes]
        return "\n".join(out)

    def markdown(self):
        out = ["**%s**" % self.title, "", "| " + " | ".join(self.headers) + " |",
               "|" + "|".join(["---"] * self.left + ["--:"] * (len(self.headers) - self.left)) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + ["%s" % n for n in self.notes]
        return "\n".join(out)


def num(v):
    if not isinstance(v, float):
        return str(v)
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v if abs(v) >= 10 else "%.2f" % v


def us(v):
    return "%.0f" % v if v >= 100 else "%.1f" % v


def f3(v):
    return "-" if v is None or v != v else "%.3f" % v


def f1(v):
    return "-" if v is None or v != v else "%.1f" % v


def f_mib(kib):
    return "-" if kib is None else "%.2f" % (kib / 1024.0)


def with_spread(s, fmt):
    """median (p25-p75)"""
    return "%s (%s-%s)" % (fmt(s["median"]), fmt(s["p25"]), fmt(s["p75"]))


def latency_tables(results, look):
    out = []
    for pattern, text in PATTERN_TEXT.items():
        t = Table("Latency, %s (ms: median of %s round medians, and their p25-p75)" % (text, _rounds(results)),
                  ["", "hop", "floor", "hop+floor", "proxy", "ratio", "target", "verdict"])
        for lang, r in results["languages"].items():
            lat = r.get("latency", {}).get(pattern)
            if not lat:
                continue
            for size, _ in SIZES:
                x = lat.get(size)
                if not x:
                    continue
                m = x["ms"]
                key = RATIO_KEY.get(size)
                v = look.get((key, "%s %s" % (lang, pattern))) if key else None
                launcher = "*" if x["launcher_was_floor"] * 2 > x["rounds"] else ""
                t.add("%s %s" % (lang, size), with_spread(m["hop"], f3), with_spread(m["pipe_floor"], f3) + launcher,
                      f3(x["floor_sum_ms"]["median"]), with_spread(m["proxy"], f3),
                      with_spread(x["ratio"], lambda a: "%.2f" % a), limit_text(key) if key else "",
                      verdict_text(v["met"]) if v else "")
        t.notes = [
            "hop = examples/hop.rs echoing the body (no logic), through the same client as the proxy;",
            "floor = the pipe floor: in each round the lower of the floor loop (the interpreter's minimal",
            "JSON line loop on pipes) and the repo's launcher alone on pipes (* = the launcher, in most",
            "rounds); proxy = the echo action through the proxy; ratio = proxy / (hop + floor) per round.",
        ]
        out.append(t)
    return out


def _rounds(results):
    for r in results["languages"].values():
        for sizes in r.get("latency", {}).values():
            for x in sizes.values():
                return x["rounds"]
    return "?"


def split_table(results):
    t = Table("Where a kept-connection activation goes (ms, medians of the same rounds)",
              ["", "pipes", "floor", "launcher", "hop fixed", "hop echo", "proxy", "proxy's own"],
              ["pipes = hop --pipe, no interpreter: the bench driving two pipes; launcher = the repo's",
               "launcher alone on pipes with the echo action; hop fixed = the hop answering {\"ok\":true};",
               "proxy's own = proxy - hop echo - (launcher - pipes): what is left once HTTP and the",
               "launcher are taken out (the client's pipe driving is counted in launcher, not in proxy)."])
    for lang, r in results["languages"].items():
        lat = r.get("latency", {}).get("keep-alive", {})
        for size, _ in SIZES:
            x = lat.get(size)
            if not x or "launcher" not in x["ms"]:
                continue
            m = {k: v["median"] for k, v in x["ms"].items()}
            own = m["proxy"] - m["hop"] - (m["launcher"] - m["pipes"])
            t.add("%s %s" % (lang, size), f3(m["pipes"]), f3(m["floor"]), f3(m["launcher"]),
                  f3(m["hop_fixed"]), f3(m["hop"]), f3(m["proxy"]), "%+.3f" % own)
    return t


def cpu_table(results, look):
    by = next((r["syscalls_by"] for r in results["languages"].values() if r.get("syscalls_by")), "-")
    t = Table("CPU time and system calls per activation (us of CPU; system calls counted by %s)" % by,
              ["", "proxy CPU", "target", "verdict", "child", "floor", "hop", "proxy calls", "target",
               "verdict", "hop calls"])
    breakdown = []
    for lang, r in results["languages"].items():
        for pattern, sizes in r.get("cpu", {}).items():
            for size, c in sizes.items():
                subject = "%s %s" % (lang, pattern)
                v = look.get((CPU_KEY[size], subject))
                sc = r.get("syscalls", {}).get(pattern, {}).get(size)
                sv = look.get(("syscalls_60B", subject)) if size == "60 B" else None
                t.add("%s %s %s" % (lang, pattern, size), us(c["proxy_us"]), limit_text(CPU_KEY[size]),
                      verdict_text(v["met"]) if v else "", us(c["child_us"]), us(c["floor_us"]), us(c["hop_us"]),
                      f1(sc["proxy"]["per_request"]) if sc else "-",
                      limit_text("syscalls_60B") if sv else "", verdict_text(sv["met"]) if sv else "",
                      f1(sc["hop"]["per_request"]) if sc else "-")
                if sc:
                    for who in ("proxy", "hop"):
                        failed = sc[who].get("errors_by_call", {})
                        calls = ", ".join("%s %.2f%s" % (k, n, " (%.2f failed)" % failed[k] if k in failed else "")
                                          for k, n in sc[who]["by_call"].items() if n >= 0.005)
                        breakdown.append("%s %s %s, %s: %s" % (lang, pattern, size, who, calls))
        if r.get("syscalls_skipped"):
            breakdown.append("%s: system calls not counted: %s" % (lang, r["syscalls_skipped"]))
    any_cpu = next((c for r in results["languages"].values() for s in r.get("cpu", {}).values()
                    for c in s.values()), None)
    t.notes = [
        "proxy CPU = utime+stime of the proxy process (/proc/PID/stat) over a run, per request%s;" % (
            " (60 B resolution %.1f us)" % any_cpu["resolution_us"] if any_cpu else ""),
        "child = its interpreter child's over the same requests; floor = the floor loop's; hop = the hop's.",
        "system calls per request, by call:",
    ] + ["  " + b for b in breakdown]
    return t


def init_table(results, look):
    t = Table("/init (ms: median of %s runs each, interleaved, and their p25-p75; a fresh proxy and connection each)"
              % _init_runs(results),
              ["", "bare start", "launcher", "prewarmed", "as port opens", "port open", "target", "verdict",
               "python prewarmed " + limit_text("init_prewarmed_python")],
              ["bare start = the interpreter starting with nothing to do (python3 -c pass, node -e 0, php -r ';');",
               "launcher = the repo's launcher spawned by hand as the proxy prewarms it, given the hello action",
               "on its pipes: spawn -> ack, the least /init sent as the port opens can take;",
               "prewarmed = /init sent once the proxy has been up 1 s (sent -> answered); as port opens = /init",
               "sent on the first connection accepted, connect-retry every 1 ms from the spawn (spawn -> answered);",
               "port open = spawn -> first accepted connection. Interpreters: %s." % "; ".join(
                   "%s %s (%s)" % (lang, r.get("interpreter"), r.get("interpreter_how"))
                   for lang, r in results["languages"].items() if r.get("interpreter"))])
    for lang, r in results["languages"].items():
        i = r.get("init")
        if not i:
            continue
        v = look.get(("init_at_open", lang))
        w = look.get(("init_prewarmed_python", lang))
        t.add(lang, with_spread(i["bare"], f1), with_spread(i["launcher"], f1), with_spread(i["prewarmed"], f1),
              with_spread(i["at_open"], f1), f1(i["port_open_after_spawn"]["median"]), limit_text("init_at_open"),
              verdict_text(v["met"]) if v else "", verdict_text(w["met"]) if w else "")
    return t


def _init_runs(results):
    for r in results["languages"].values():
        if r.get("init"):
            return r["init"]["bare"]["n"]
    return "?"


def preload_table(results, look):
    t = Table("Preloading the image's library (ms: median of %s runs each, interleaved, and their p25-p75; "
              "a fresh proxy each)" % _runs(results, "preload"),
              ["", "library", "bare start", "bare + load", "load", "/init without", "/init with OW_PRELOAD",
               "saved", "target", "verdict", "hello /init"], left=2)
    for lang, r in results["languages"].items():
        p = r.get("preload")
        if p:
            v = look.get(("preload_init", "%s %s" % (lang, p["library"])))
            t.add(lang, "%s %s" % (p["library"], p.get("version") or "?"), with_spread(p["bare"], f1),
                  with_spread(p["load"], f1), f1(p["load_cost_ms"]), with_spread(p["without"], f1),
                  with_spread(p["with"], f1), f1(p["saved_ms"]), limit_text("preload_init"),
                  verdict_text(v["met"]) if v else "", f1(r["init"]["prewarmed"]["median"]) if r.get("init") else "-")
    up = next((p["up_before_init_s"] for p in _each(results, "preload")), "?")
    t.notes = [
        "bare start = the interpreter with nothing to do; bare + load = it loading the library and ending",
        "(python3 -c 'import requests', node -e \"require('openwhisk')\", php -r requiring Guzzle's autoload",
        "and loading GuzzleHttp\\Client and Psr7\\Request); load = their difference. /init = an action whose",
        "module level loads the library, sent once the proxy has been up %s s (its prewarmed interpreter" % up,
        "has loaded what OW_PRELOAD names), sent -> answered; saved = without - with. The action reports",
        "whether the library was loaded before its code: true with OW_PRELOAD, false without, in every run.",
        "hello /init = the prewarmed /init of the hello action, which loads nothing (the /init table).",
    ]
    for lang, r in results["languages"].items():
        p = r.get("preload")
        if p:
            t.notes.append("%s: %s; OW_PRELOAD=%s" % (lang, p["provided"], p["names"]))
        elif r.get("preload_skipped"):
            t.notes.append("%s: not measured: %s" % (lang, r["preload_skipped"]))
    return t


def preload_memory_table(results):
    t = Table("Idle memory of a prewarmed container, the cost of preloading (MiB: VmRSS of the proxy and "
              "its prewarmed child, summed, before /init; median of the same %s proxies each)"
              % _runs(results, "preload"),
              ["", "library", "without OW_PRELOAD", "with", "cost"], left=2,
              notes=["pages the processes share (the interpreter's own libraries) count in each one's VmRSS."])
    for lang, r in results["languages"].items():
        p = r.get("preload")
        if p:
            m = p["rss_kib"]
            t.add(lang, p["library"], with_spread(m["without"], f_mib), with_spread(m["with"], f_mib),
                  "%+.2f" % (p["rss_cost_kib"] / 1024.0))
            if p.get("processes") != [2]:
                t.notes.append("%s: %s processes in the tree (the proxy and one child expected)" % (
                    lang, "/".join(str(n) for n in p.get("processes", []))))
    return t


def install_table(results):
    t = Table("Dependencies at /init (ms: median of %s runs each, interleaved, and their p25-p75; "
              "a fresh proxy each)" % _runs(results, "install"),
              ["", "requirements.txt", "pip alone", "/init installing", "above pip", "action imports it"], left=2)
    for lang, r in results["languages"].items():
        i = r.get("install")
        if i:
            t.add(lang, i["requirement"], with_spread(i["pip"], f1), with_spread(i["init"], f1),
                  f1(i["above_pip_ms"]), "yes" if i.get("imported") else "no")
    if not t.rows:
        return None
    t.notes = [
        "/init = a zip of the action and a one-line requirements.txt (no virtualenv/), the package in a",
        "wheel the bench builds, pip offline (PIP_NO_INDEX=1, PIP_FIND_LINKS=its folder); the proxy up",
        "%s s, sent -> answered, then the action must answer the package's value. pip alone = the same" % (
            _each(results, "install")[0]["up_before_init_s"]),
        "interpreter's pip install --target with the proxy's arguments, by hand into a fresh folder (spawn -> exit).",
    ]
    return t


def _each(results, part):
    return [r[part] for r in results["languages"].values() if r.get(part)]


def _runs(results, part):
    for x in _each(results, part):
        for v in x.values():
            if isinstance(v, dict) and "n" in v:
                return v["n"]
    return "?"


def memory_table(results, look):
    t = Table("Proxy memory (MiB; peaks are VmHWM of a fresh proxy per measurement)",
              ["", "zip /init body", "peak", "per body byte", "target", "verdict", "/run body", "peak",
               "above body", "target", "verdict", "RSS idle", "after traffic", "after 4-conn"],
              ["zip /init = a 48 MiB stored zip of random data, base64 in the JSON body; /run = a 100 MiB",
               "body, a list of strings with raw and escaped newlines, to an action answering its length.",
               "RSS idle <= %s MiB and after the 1 MiB traffic <= %s MiB: see the targets below." % (
                   TARGETS["rss_idle"][1], TARGETS["rss_after"][1])])
    for lang, r in results["languages"].items():
        mem, rss = r.get("memory", {}), r.get("rss", {})
        if not mem and not rss:
            continue
        z, b = mem.get("init_zip"), mem.get("run_body")
        vz, vb = look.get(("peak_init_zip", lang)), look.get(("peak_run_body", lang))
        t.add(lang,
              "%.1f" % (z["body_bytes"] / 2**20) if z else "-", f_mib(z["peak_kib"]) if z else "-",
              "%.2fx" % vz["value"] if vz else "-", limit_text("peak_init_zip"), verdict_text(vz["met"]) if vz else "",
              "%.1f" % (b["body_bytes"] / 2**20) if b else "-", f_mib(b["peak_kib"]) if b else "-",
              "%+.1f" % vb["value"] if vb else "-", limit_text("peak_run_body"), verdict_text(vb["met"]) if vb else "",
              f_mib(rss.get("idle_kib")), f_mib(rss.get("after_traffic_kib")), f_mib(rss.get("after_4conn_kib")))
        if b and not b.get("answered"):
            t.notes.append("%s: the 100 MiB /run was not answered with its length: %s" % (lang, b.get("answer")))
    return t


def throughput_table(results):
    t = Table("4 connections at once (60 B bodies, each with its own id; wrong = not the request's own answer)",
              ["", "action", "children", "requests", "req/s", "vs 1 child", "wrong", "failed"], left=2)
    for lang, r in results["languages"].items():
        base = {}
        for x in r.get("throughput", []):
            if x["children"] == 1:
                base[x["action"]] = x["req_per_s"]
            k = x["req_per_s"] / base[x["action"]] if x["action"] in base else float("nan")
            t.add(lang, "sleep 10 ms" if x["action"] == "sleep" else x["action"], x["children"], x["requests"],
                  "%.0f" % x["req_per_s"], "%.2fx" % k, x["wrong"], x["failed"])
            if x.get("error"):
                t.notes.append("%s %s x%d: %s" % (lang, x["action"], x["children"], x["error"][:200]))
    return t


def targets_table(verdicts):
    """One row per target: where it is met, and where missed with the figure."""
    t = Table("Targets", ["target", "limit", "met", "missed"], left=4)
    for key, (what, _, unit, _) in TARGETS.items():
        rows = [v for v in verdicts if v["target"] == key]
        if not rows:
            continue

        def figure(v):
            value = v["value"]
            return "%s %s" % (v["subject"], num(value))
        t.add(what, limit_text(key), ", ".join(v["subject"] for v in rows if v["met"]) or "-",
              ", ".join(figure(v) for v in rows if v["met"] is False) or "-")
    for v in verdicts:
        if v["target"] == "bench":
            t.add("the bench ran", "", "", "%s: %s" % (v["subject"], str(v["value"])[:100]))
    n_met = sum(1 for v in verdicts if v["met"])
    n_missed = sum(1 for v in verdicts if v["met"] is False)
    t.notes = ["%d met, %d missed (missed figures in the target's unit)" % (n_met, n_missed)]
    return t


def header(results):
    m = results["machine"]
    lines = [
        "actionloop bench, %s%s" % (results["date"], " (--quick)" if results["quick"] else ""),
        "machine: %s, %s cores, %s MiB, Linux %s; load average %s at the start, %s at the end" % (
            m["cpu"], m["cores"], m["memory_mib"], m["kernel"], results["load_start"], results.get("load_end", "?")),
        "proxy: %s, %d bytes (%s); hop: %s" % (
            results["proxy"]["binary"], results["proxy"]["bytes"], results["proxy"]["git"], results["hop"]),
    ]
    others = results.get("others_cpu_share")
    if others is not None:
        lines.append("other processes took %.0f%% of the machine's CPU time during the run%s" % (
            100 * others, " (a busy machine: expect wide spreads)" if others > 0.15 else ""))
    for lang, r in results["languages"].items():
        if r.get("skipped"):
            lines.append("%s: skipped, %s" % (lang, r["skipped"]))
        else:
            lines.append("%s: %s, %s (%s)%s" % (
                lang, r.get("version"), r.get("interpreter"), r.get("interpreter_how"),
                "; floor and launcher get the proxy's GLIBC_TUNABLES" if r.get("glibc_tunables") else ""))
    return lines


def tables(results):
    look = _lookup(results["verdicts"])
    out = latency_tables(results, look)
    out += [split_table(results), cpu_table(results, look), init_table(results, look),
            preload_table(results, look), install_table(results), memory_table(results, look),
            preload_memory_table(results), throughput_table(results), targets_table(results["verdicts"])]
    return [t for t in out if t is not None]


def text(results):
    parts = ["\n".join(header(results))] + [t.text() for t in tables(results)]
    return "\n\n".join(parts) + "\n\n(%.0f s)" % results["seconds"]


def markdown(results):
    parts = ["\n".join("- " + h for h in header(results))] + [t.markdown() for t in tables(results)]
    return "\n\n".join(parts) + "\n"


def write_json(results, path):
    out = dict(results, targets={k: {"what": w, "limit": l, "unit": u, "sense": s}
                                 for k, (w, l, u, s) in TARGETS.items()})
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
