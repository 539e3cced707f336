"""Compare two proposal traces written by ``trace.py``: study by study, trial by trial."""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compare.py OLD.json NEW.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        old = json.load(f)
    with open(argv[1]) as f:
        new = json.load(f)
    if len(old) != len(new):
        print(f"different numbers of studies: {len(old)} vs {len(new)}")
        return 1
    differ = 0
    trials = 0
    for a, b in zip(old, new):
        trials += len(a["params"])
        if a["params"] != b["params"] or a["values"] != b["values"]:
            first = next(
                (i for i, (p, q) in enumerate(zip(a["params"], b["params"])) if p != q),
                min(len(a["params"]), len(b["params"])),
            )
            print(f"{a['sampler']} study {a['study']}: first difference at trial {first}")
            differ += 1
    by_sampler: dict[str, int] = {}
    for a in old:
        by_sampler[a["sampler"]] = by_sampler.get(a["sampler"], 0) + 1
    summary = ", ".join(f"{k} {v} studies" for k, v in by_sampler.items())
    print(f"{len(old) - differ} of {len(old)} studies identical ({summary}; {trials} trials)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
