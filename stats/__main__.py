"""Offline readout: `python -m stats analyze < input.json`.

Reads one analysis object, a list of them, or {"correction": "holm" | "bh", "analyses":
[...]} from standard input and prints the results in the same shape. Malformed input
exits with status 2 and a message naming the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from stats.analysis import analyze_records
from stats.parse import parse_request
from stats.types import InputError

EXIT_INPUT_ERROR = 2


def run_analyze(stdin: TextIO, stdout: TextIO) -> None:
    try:
        raw = json.load(stdin)
    except json.JSONDecodeError as exc:
        raise InputError("", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    request = parse_request(raw)
    prefix = {"object": "", "list": "[{}].", "family": "analyses[{}]."}[request.shape]
    results = analyze_records(request.records, correction=request.correction, prefix=prefix)
    out: Any = results
    if request.shape == "object":
        out = results[0]
    elif request.shape == "family":
        out = {"correction": request.correction, "analyses": results}
    json.dump(out, stdout, indent=2, allow_nan=False)
    stdout.write("\n")


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stats", description="Experiment readouts from sufficient statistics."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("analyze", help="read analyses as JSON on stdin, print results as JSON")
    parser.parse_args(argv)
    try:
        run_analyze(stdin or sys.stdin, stdout or sys.stdout)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
