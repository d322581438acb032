#!/usr/bin/env python3
"""The code a request runs, in 64-byte instruction-cache lines: footprint.py RUN_A RUN_B N.

RUN_A and RUN_B are callgrind files written with --dump-instr=yes for two runs that differ by N requests (`count`
with FOOTPRINT=1 makes them). An instruction whose count grows by at least N/2 between them runs on every request;
the lines holding such instructions are printed per library, then the functions with the most lines.
"""
import collections
import re
import sys


def load(path):
    """Instruction counts per (object, address), and each address's function."""
    counts = collections.defaultdict(int)
    function_of = {}
    names = {}
    obj = fn = None
    pos = 0
    skip_next = False  # the cost line after `calls=` is the call's inclusive cost, not this instruction's
    with open(path) as f:
        for line in f:
            c = line[0]
            if c in "0123456789+-*":
                parts = line.split()
                p = parts[0]
                if p.startswith("0x"):
                    pos = int(p, 16)
                elif p[0] in "+-":
                    step = int(p[1:], 16) if p[1:].startswith("0x") else int(p[1:])
                    pos += step if p[0] == "+" else -step
                if skip_next:
                    skip_next = False
                    continue
                if len(parts) > 2:  # positions: instr line
                    counts[(obj, pos)] += int(parts[2])
                    function_of[(obj, pos)] = fn
                continue
            m = re.match(r"(c?ob|c?fn|c?fl|fi|fe)=\((\d+)\)(?: (.*))?", line)
            if m:
                kind, ident, name = m.groups()
                key = (kind.lstrip("c")[:2], ident)
                if name:
                    names[key] = name.strip()
                if kind == "ob":
                    obj = names.get(("ob", ident))
                elif kind == "fn":
                    fn = names.get(("fn", ident))
            elif line.startswith("calls="):
                skip_next = True
    return counts, function_of


def main():
    a, _ = load(sys.argv[1])
    b, function_of = load(sys.argv[2])
    n = float(sys.argv[3])
    lines = collections.defaultdict(set)
    by_function = collections.defaultdict(set)
    for key, count in b.items():
        if (count - a.get(key, 0)) / n >= 0.5:
            obj = (key[0] or "?").split("/")[-1]
            lines[obj].add(key[1] >> 6)
            by_function[(obj, function_of.get(key))].add(key[1] >> 6)
    total = 0
    for obj, s in sorted(lines.items(), key=lambda x: -len(x[1])):
        print(f"{len(s):6d} lines {len(s) * 64 / 1024:6.1f} KiB  {obj}")
        total += len(s)
    print(f"{total:6d} lines {total * 64 / 1024:6.1f} KiB  in all")
    for (obj, fn), s in sorted(by_function.items(), key=lambda x: -len(x[1]))[:15]:
        print(f"    {len(s):4d} {obj[:14]:14} {str(fn)[:110]}")


if __name__ == "__main__":
    main()
