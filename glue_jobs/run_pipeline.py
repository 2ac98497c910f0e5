"""Glue job entry point: run the pipeline over a lake.

    --lake s3://bucket/prefix   [--sources DIR]

Glue adds arguments of its own (--JOB_NAME, ...), which are ignored. Setup stays in
main() so the module imports under plain pytest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from veracity.lake import Lake
    from veracity.pipeline import run

    parser = argparse.ArgumentParser(prog="run_pipeline")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--sources", default=None)
    args, _glue_args = parser.parse_known_args(argv)
    summary = run(Lake.open(args.lake), args.sources, progress=print)
    print("no new batches" if summary is None else f"published {summary.run_id}: {summary.persons} persons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
