"""Glue job entry point (dev only): land synthetic extracts for the eleven systems.

    --lake s3://bucket/prefix  [--people N]  [--seed S]

Synthetic data with ground truth is the only data dev and test environments hold.
Glue adds arguments of its own (--JOB_NAME, ...), which are ignored. Setup stays in
main() so the module imports under plain pytest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from veracity.lake import Lake
    from veracity.synthetic import generate

    parser = argparse.ArgumentParser(prog="generate")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    args, _glue_args = parser.parse_known_args(argv)
    if args.people < 1:
        print(f"--people must be at least 1, got {args.people}", file=sys.stderr)
        return 1
    generate(Lake.open(args.lake), args.people, seed=args.seed)
    print(f"landed synthetic extracts for {args.people} people in {args.lake}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
