#!/usr/bin/env python3
"""Every status the OpenAPI document promises must have been answered by some test.

Usage: status-coverage.py OPENAPI_JSON STATUS_DIR

STATUS_DIR holds the files the API tests leave (tests/api/support.rs): one line per
method, route template, status and count. Prints the promised statuses no test saw and
exits 1 if there are any: a documented answer is reachable, or it is removed.
"""
import json
import pathlib
import sys


def main() -> int:
    document = json.loads(pathlib.Path(sys.argv[1]).read_text())
    seen = set()
    for log in pathlib.Path(sys.argv[2]).glob("*.log"):
        for line in log.read_text().splitlines():
            method, route, status, _count = line.split(" ")
            seen.add((method, route, status))
    promised = [
        (method.upper(), route, status)
        for route, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
        for status in operation.get("responses", {})
        if status != "default"
    ]
    missing = [answer for answer in promised if answer not in seen]
    for method, route, status in missing:
        print(f"never answered: {method} {route} {status}")
    print(
        f"status coverage: {len(promised) - len(missing)} of {len(promised)} documented answers given by the tests"
    )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
