#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/ (checked in).

Small, valid inputs of each kind, so the fuzzers start from real zips, tar.gz, /init and /run
bodies and answer lines instead of discovering the formats byte by byte. Re-run it after a
change here: `python3 fuzz/make_corpus.py`.
"""

import base64
import gzip
import io
import json
import os
import stat
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ACTION = b'def main(args):\n    return {"greeting": "hello " + args.get("name", "world")}\n'


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def zip_bytes(entries):
    """entries: (name, bytes or None for a folder, unix mode or None, symlink target or None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content, mode, link in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if link is not None:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(info, link)
            elif content is None:
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                z.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | (mode or 0o644)) << 16
                z.writestr(info, content)
    return out.getvalue()


def targz_bytes(entries):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, content, mode, link in entries:
                info = tarfile.TarInfo(name)
                info.mtime = 0
                if link is not None:
                    info.type = tarfile.SYMTYPE
                    info.linkname = link
                    tar.addfile(info)
                elif content is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                else:
                    info.size = len(content)
                    info.mode = mode or 0o644
                    tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


PACKAGES = {
    "python": [("__main__.py", ACTION, None, None)],
    "nested": [
        ("lib/", None, None, None),
        ("lib/helper.py", b"X = 1\n", None, None),
        ("__main__.py", b"from lib.helper import X\ndef main(a):\n    return {'x': X}\n", None, None),
    ],
    "exec": [("exec", b"#!/bin/sh\nwhile read l; do echo '{}' >&3; done\n", 0o755, None)],
    "symlink": [
        ("virtualenv/bin/", None, None, None),
        ("virtualenv/bin/python", None, None, "/usr/bin/python3"),
        ("__main__.py", ACTION, None, None),
    ],
}


def main():
    for name, entries in PACKAGES.items():
        write("package", "zip-" + name, zip_bytes(entries))
        write("package", "targz-" + name, targz_bytes(entries))
    write("package", "source", ACTION)
    write("package", "source-script", b"#!/bin/sh\necho '{\"ok\":true}' >&3\n")

    inits = {
        "source": {"value": {"code": ACTION.decode(), "main": "main", "binary": False}},
        "zip": {
            "value": {
                "code": base64.b64encode(zip_bytes(PACKAGES["python"])).decode(),
                "binary": True,
                "main": "main",
                "env": {"A": "x", "B": 1, "C": {"d": [1, None]}, "D": None},
            }
        },
        "empty": {},
        "null-value": {"value": None},
        "no-code": {"value": {"main": "hello", "name": "n"}},
    }
    for name, body in inits.items():
        write("init_request", "init-" + name, json.dumps(body).encode())
    runs = {
        "simple": {"value": {"name": "Ada"}},
        "context": {
            "value": {"a": [1, 2.5, "x", True, None]},
            "namespace": "guest",
            "action_name": "hello",
            "activation_id": "abc123",
            "transaction_id": "tid",
            "api_key": "k:v",
            "deadline": "1700000000000",
        },
        "deadline-number": {"value": {}, "deadline": 1700000000000},
    }
    for name, body in runs.items():
        write("init_request", "run-" + name, json.dumps(body).encode())
    write("init_request", "run-multiline", b'{\n  "value": {"k": "v"},\r\n  "deadline": "1"\n}\n')

    answers = {
        "object": b'{"greeting":"hello"}',
        "array": b'[1,"two",{"three":3.0},null,true]',
        "nested": b' {"a":{"b":[{"c":"\\u00e9\\n"}]}}',
        "string": b'"just a string"',
        "number": b"42",
        "marker": b'{"__actionloop_error":"cannot serialise"}',
        "error": b'{"error":"app error"}',
        "garbage": b"{not json",
        "trailing": b"{} {}",
    }
    for name, line in answers.items():
        write("answer", name, line)


if __name__ == "__main__":
    main()
