"""Checks deploy/runtimes.json: the shape apache/openwhisk's ExecManifest reads, and that each
image it names is one `make images` builds (the name `scripts/images.sh names` prints)."""

import json
import os
import re
import subprocess

# The kinds the manifest must register, and the Dockerfile (and its base-image argument) of each.
EXPECTED = {
    "python:3": ("python", "Dockerfile.python", "PYTHON_IMAGE"),
    "nodejs:22": ("nodejs", "Dockerfile.nodejs", "NODE_IMAGE"),
    "php:8.3": ("php", "Dockerfile.php", "PHP_IMAGE"),
}
# ExecManifest's ByteSize and FiniteDuration strings.
BYTE_SIZE = re.compile(r"(?i)\s?(\d+)\s?(GB|MB|KB|B|G|M|K)\s?")
DURATION = re.compile(
    r"\s*\d+\s*(ms|millis|milliseconds?|s|seconds?|m|min|minutes?|h|hours?|d|days?)\s*"
)
IMAGE_KEYS = {"name", "registry", "prefix", "tag"}
ENTRY_KEYS = {"kind", "image", "deprecated", "default", "attached", "requireMain",
              "sentinelledLogs", "stemCells"}


class Checks:
    """Results as (group, passed, name, detail); a group is the file, a kind, or the kind list."""

    def __init__(self):
        self.results = []
        self.group = "the file"

    def check(self, name, passed, detail=""):
        self.results.append((self.group, bool(passed), name, detail))
        return passed


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError(f"duplicate keys {dups}")
    return dict(pairs)


def _image_ok(img):
    return (
        isinstance(img, dict)
        and isinstance(img.get("name"), str)
        and img["name"]
        and set(img) <= IMAGE_KEYS
        and all(isinstance(v, str) for v in img.values())
    )


def _stem_cell_problems(cell):
    problems = []
    if not isinstance(cell, dict):
        return ["not an object"]
    count = cell.get("initialCount", cell.get("count"))
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        problems.append("initialCount must be a positive integer")
    if not isinstance(cell.get("memory"), str) or not BYTE_SIZE.fullmatch(cell["memory"]):
        problems.append("memory must be a size such as '256 MB'")
    reactive = cell.get("reactive")
    if reactive is not None:
        ints = {k: reactive.get(k) for k in ("minCount", "maxCount", "threshold", "increment")}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints.values()):
            problems.append("reactive needs integer minCount, maxCount, threshold, increment")
        else:
            if not 0 <= ints["minCount"] <= ints["maxCount"]:
                problems.append("reactive: 0 <= minCount <= maxCount")
            if ints["maxCount"] <= 0 or ints["threshold"] <= 0:
                problems.append("reactive: maxCount and threshold must be positive")
            if not 0 < ints["increment"] <= ints["maxCount"]:
                problems.append("reactive: 0 < increment <= maxCount")
        if not isinstance(reactive.get("ttl"), str) or not DURATION.fullmatch(reactive["ttl"]):
            problems.append("reactive.ttl must be a duration such as '2 minutes'")
    return problems


def built_names(root):
    """The image names `make images` builds, as scripts/images.sh prints them."""
    out = subprocess.run(
        ["bash", os.path.join(root, "scripts", "images.sh"), "names", "all"],
        capture_output=True, text=True, check=True,
    ).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def check(root):
    c = Checks()
    path = os.path.join(root, "deploy", "runtimes.json")
    try:
        with open(path) as f:
            doc = json.load(f, object_pairs_hook=_no_duplicates)
    except (OSError, ValueError) as e:
        c.check("parses as JSON", False, f"{path}: {e}")
        return c.results
    c.check("parses as JSON", True, path)
    c.check(
        "top level: runtimes and blackboxes",
        isinstance(doc, dict)
        and isinstance(doc.get("runtimes"), dict)
        and isinstance(doc.get("blackboxes"), list)
        and set(doc) <= {"description", "runtimes", "blackboxes"},
        f"keys {sorted(doc) if isinstance(doc, dict) else type(doc).__name__}",
    )
    runtimes = doc.get("runtimes") if isinstance(doc, dict) else None
    if not isinstance(runtimes, dict):
        return c.results
    c.check(
        "blackboxes are images",
        all(_image_ok(b) for b in doc.get("blackboxes", [])),
        f"{len(doc.get('blackboxes', []))} blackbox images",
    )
    names = built_names(root)
    seen = {}
    for family, entries in runtimes.items():
        c.group = f"family {family}"
        if not c.check(f"{family}: a list of kinds", isinstance(entries, list) and entries):
            continue
        defaults = [e.get("kind") for e in entries if isinstance(e, dict) and e.get("default") is True]
        c.check(
            f"{family}: exactly one default kind",
            len(defaults) == 1 or (len(entries) == 1 and not defaults),
            f"defaults {defaults}",
        )
        for e in entries:
            kind = e.get("kind") if isinstance(e, dict) else None
            label = f"{family} / {kind}"
            c.group = f"kind {kind}"
            if not c.check(f"{label}: an object with kind and image",
                           isinstance(e, dict) and isinstance(kind, str) and "image" in e):
                continue
            c.check(f"{label}: only ExecManifest's fields", set(e) <= ENTRY_KEYS, f"fields {sorted(e)}")
            c.check(f"{label}: kind is {family}:<version>", kind.startswith(family + ":") and
                    len(kind) > len(family) + 1)
            c.check(f"{label}: kind registered once", kind not in seen, f"also in {seen.get(kind)}")
            seen[kind] = family
            for flag in ("deprecated", "default", "requireMain", "sentinelledLogs"):
                if flag in e:
                    c.check(f"{label}: {flag} is a boolean", isinstance(e[flag], bool))
            att = e.get("attached")
            if att is not None:
                c.check(
                    f"{label}: attached names attachmentName and attachmentType",
                    isinstance(att, dict)
                    and isinstance(att.get("attachmentName"), str)
                    and isinstance(att.get("attachmentType"), str),
                )
            img = e["image"]
            if c.check(f"{label}: image {{prefix, name, tag}}", _image_ok(img) and "prefix" in img and "tag" in img,
                       json.dumps(img)):
                local = f"{img['name']}:{img['tag']}"
                c.check(
                    f"{label}: image {img['prefix']}/{local} is one `make images` builds ({local})",
                    local in names,
                    f"`scripts/images.sh names` prints {sorted(names)}",
                )
            cells = e.get("stemCells")
            if cells is not None:
                problems = [p for cell in (cells if isinstance(cells, list) else [None])
                            for p in _stem_cell_problems(cell)]
                c.check(f"{label}: stem cells", isinstance(cells, list) and not problems,
                        "; ".join(problems) or f"{len(cells)} stem cell config(s)")
            if kind in EXPECTED:
                _check_dockerfile(c, root, label, kind, e)
    c.group = "the kinds"
    for kind, (family, _, _) in EXPECTED.items():
        c.check(f"registers {kind}", seen.get(kind) == family, f"kinds {sorted(seen)}")
        entry = next((e for e in runtimes.get(family, []) if isinstance(e, dict) and e.get("kind") == kind), {})
        c.check(f"{kind}: prewarmed (stem cells)", bool(entry.get("stemCells")))
    return c.results


def _check_dockerfile(c, root, label, kind, entry):
    """The kind's version is the version of the interpreter image its Dockerfile starts from."""
    family, dockerfile, arg = EXPECTED[kind]
    try:
        with open(os.path.join(root, dockerfile)) as f:
            text = f.read()
    except OSError as e:
        c.check(f"{label}: {dockerfile}", False, str(e))
        return
    m = re.search(rf"^ARG {arg}=(\S+)$", text, re.M)
    base = m.group(1) if m else ""
    version = kind.split(":", 1)[1]
    tag = base.split(":", 1)[1] if ":" in base else ""
    c.check(
        f"{label}: {dockerfile} starts from {base or '?'} (version {version})",
        tag == version or tag.startswith(version + ".") or tag.startswith(version + "-"),
    )
    c.check(f"{label}: {dockerfile} sets OW_RUNTIME={family}",
            re.search(rf"OW_RUNTIME={family}\b", text) is not None)
