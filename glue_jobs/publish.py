"""Glue job entry point: publish a staged match as the lake's new snapshot.

    --lake s3://bucket/prefix  [--run-id ID]  [--sources DIR]

Builds stable person ids, golden records and the review queue from the match the
match job staged (the newest, unless ``--run-id`` names one), publishes them as one
snapshot with an atomic switch, and removes the staging. Glue adds arguments of its
own (--JOB_NAME, ...), which are ignored. Setup stays in main() so the module imports
under plain pytest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from veracity.errors import VeracityError
    from veracity.lake import Lake
    from veracity.pipeline import publish_staged

    parser = argparse.ArgumentParser(prog="publish")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--sources", default=None)
    args, _glue_args = parser.parse_known_args(argv)
    try:
        summary = publish_staged(Lake.open(args.lake), args.run_id, args.sources, progress=print)
    except VeracityError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"published {summary.run_id}: {summary.records_resolved} records, {summary.persons} persons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
