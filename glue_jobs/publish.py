"""Glue job entry point: publish a staged match as the lake's new snapshot.

    --lake s3://bucket/prefix  [--run-id ID]  [--sources DIR]  [--search-table NAME]

Builds stable person ids, golden records and the review queue from the match the
match job staged (the newest, unless ``--run-id`` names one), publishes them as one
snapshot with an atomic switch, and removes the staging; then writes person search's
serving index to the DynamoDB table ``--search-table`` names. Glue adds arguments of its
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
    parser.add_argument("--search-table", default=None)
    args, _glue_args = parser.parse_known_args(argv)
    lake = Lake.open(args.lake)
    try:
        summary = publish_staged(lake, args.run_id, args.sources, progress=print)
    except VeracityError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"published {summary.run_id}: {summary.records_resolved} records, {summary.persons} persons")
    if args.search_table:
        from veracity.search.dynamo import write_index

        counts = write_index(lake, args.search_table, summary.run_id)
        print(f"search index {args.search_table}: {counts['written']} items written, {counts['unchanged']} unchanged, "
              f"{counts['deleted']} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
