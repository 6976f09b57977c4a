"""What an S3 client library costs a process: installed size and import time, obstore vs boto3.

    python bench/s3_client_weight.py [--reps 7]

Each library is imported in a fresh interpreter (`python -X importtime`), alternating the two
contenders, after one untimed warm-up run of each (the page cache). Printed: the median and
range of the cumulative import time of the top-level package (boto3: with `boto3.client`
looked up, so botocore is loaded too), and the installed size of each package with its own
dependencies that Epochal does not already need. Needs both installed
(`pip install obstore boto3`); the figures in the README came from this script.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CONTENDERS = {
    "obstore": ("import obstore", ["obstore", "typing-extensions"]),
    "boto3": (
        "import boto3; boto3.client",
        ["boto3", "botocore", "s3transfer", "jmespath", "python-dateutil"],
    ),
}


def import_ms(statement: str, package: str) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    for line in out.splitlines():  # "import time: self [us] | cumulative | imported package"
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if match and match.group(2) == package:
            return int(match.group(1)) / 1000
    raise RuntimeError(f"{package} not in the import-time report")


def installed_mb(distributions: list[str]) -> float:
    total = 0
    for name in distributions:
        dist = metadata.distribution(name)
        for file in dist.files or ():
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for name, (statement, _) in CONTENDERS.items():
        import_ms(statement, name)  # warm-up, untimed
    for _ in range(args.reps):
        for name, (statement, _) in CONTENDERS.items():  # alternating
            times[name].append(import_ms(statement, name))
    for name, (_, dists) in CONTENDERS.items():
        t = times[name]
        print(
            f"{name:8} import {statistics.median(t):7.1f} ms (range {min(t):.1f}-{max(t):.1f}, "
            f"{len(t)} runs); installed {installed_mb(dists):5.1f} MB ({', '.join(dists)})"
        )
    print("loadavg after: ", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
