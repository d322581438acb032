"""Writes the swsgi wheel from the two built executables (Python standard library only).

Called by Packaging/wheel/build, which builds the executables, reads the version from `swsgi --version`
and the manylinux tag from their glibc symbol versions. Reproducible: every entry has the same
timestamp (SOURCE_DATE_EPOCH when set) and the entries are written in a fixed order.
"""

import argparse
import base64
import hashlib
import os
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

SUMMARY = "A WSGI server (uWSGI's options, prefork, zero-loss reloads) and hupwatch, its graceful-reload supervisor, as native programs"

CLASSIFIERS = [
    "Development Status :: 4 - Beta",
    "Environment :: Web Environment",
    "Intended Audience :: Developers",
    "Intended Audience :: System Administrators",
    "License :: OSI Approved :: Apache Software License",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.8",
    "Programming Language :: Python :: 3.9",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
    "Topic :: Internet :: WWW/HTTP :: WSGI :: Server",
    "Topic :: System :: Systems Administration",
]

PROJECT_URLS = [
    ("Homepage", "https://github.com/hupwatch/swsgi"),
    ("Source", "https://github.com/hupwatch/swsgi"),
    ("Issues", "https://github.com/hupwatch/swsgi/issues"),
    ("Documentation", "https://github.com/hupwatch/swsgi#readme"),
]


def metadata(version, readme):
    lines = [
        "Metadata-Version: 2.1",
        "Name: swsgi",
        "Version: " + version,
        "Summary: " + SUMMARY,
        "Home-page: https://github.com/hupwatch/swsgi",
        "License: Apache-2.0",
        "Keywords: wsgi,server,uwsgi,gunicorn,reload,graceful,prefork",
        "Platform: Linux",
        "Requires-Python: >=3.8",
        "Description-Content-Type: text/markdown; charset=UTF-8",
    ]
    lines += ["Classifier: " + c for c in CLASSIFIERS]
    lines += ["Project-URL: %s, %s" % u for u in PROJECT_URLS]
    # The long description is the message body (core metadata 2.1), after one empty line.
    return ("\n".join(lines) + "\n\n" + readme).encode("utf-8")


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--version", required=True)
    p.add_argument("--platform", required=True, help="e.g. manylinux_2_34_x86_64")
    p.add_argument("--swsgi", required=True)
    p.add_argument("--hupwatch", required=True)
    p.add_argument("--readme", required=True)
    p.add_argument("--license", required=True)
    p.add_argument("--out", required=True, help="directory to write the wheel into")
    a = p.parse_args()

    name = "swsgi"
    tag = "py3-none-" + a.platform
    dist_info = "%s-%s.dist-info" % (name, a.version)
    data_dir = "%s-%s.data" % (name, a.version)
    wheel_path = os.path.join(a.out, "%s-%s-%s.whl" % (name, a.version, tag))

    with open(a.readme, encoding="utf-8") as f:
        readme = f.read()
    entries = []  # (name in the wheel, bytes, unix mode)
    for package in ("swsgi", "hupwatch"):
        for module in ("__init__.py", "__main__.py"):
            with open(os.path.join(HERE, "python", package, module), "rb") as f:
                entries.append(("%s/%s" % (package, module), f.read(), 0o644))
    # Scripts: pip copies them to the environment's bin/ (on PATH once it is active), executable.
    for program, path in (("swsgi", a.swsgi), ("hupwatch", a.hupwatch)):
        with open(path, "rb") as f:
            entries.append(("%s/scripts/%s" % (data_dir, program), f.read(), 0o755))
    with open(a.license, "rb") as f:
        entries.append(("%s/LICENSE" % dist_info, f.read(), 0o644))
    entries.append(("%s/METADATA" % dist_info, metadata(a.version, readme), 0o644))
    wheel = "Wheel-Version: 1.0\nGenerator: swsgi Packaging/wheel/make_wheel.py\nRoot-Is-Purelib: false\nTag: %s\n" % tag
    entries.append(("%s/WHEEL" % dist_info, wheel.encode("ascii"), 0o644))
    entries.append(("%s/top_level.txt" % dist_info, b"hupwatch\nswsgi\n", 0o644))
    record_name = "%s/RECORD" % dist_info
    record = "\n".join([record_line(n, d) for n, d, _ in entries] + [record_name + ",,"]) + "\n"
    entries.append((record_name, record.encode("ascii"), 0o644))

    stamp = time.gmtime(max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800))[:6]
    os.makedirs(a.out, exist_ok=True)
    partial = wheel_path + ".partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for n, d, mode in entries:
            info = zipfile.ZipInfo(n, date_time=stamp)
            info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, d, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(partial, wheel_path)
    print(wheel_path)


if __name__ == "__main__":
    main()
