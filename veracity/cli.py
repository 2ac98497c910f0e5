"""The ``veracity`` command line: a thin shell over the core package."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table as RichTable

from veracity import __version__
from veracity.errors import VeracityError
from veracity.lake import Lake

console = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def cmd_generate(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from veracity.synthetic import generate
    from veracity.synthetic.delta import generate_delta

    started = time.monotonic()
    if args.delta:
        if args.batch is None:
            raise VeracityError("--delta needs --batch K (1 for the first follow-on batch)")
        d = generate_delta(Lake.open(args.lake), args.batch)
        _progress(
            f"delta batch {args.batch} ({d.batch_id}): {d.records:,} records ({d.updates:,} updates) incl. "
            f"{d.new_people:,} new people, {d.deletions:,} deletions, in {time.monotonic() - started:.1f}s"
        )
        return 0
    if args.batch is not None:
        raise VeracityError("--batch is for follow-on batches: add --delta")
    lake = Lake.open(args.lake, create=True)
    if lake.exists("landing") and lake.list_dirs("landing"):
        raise VeracityError(f"{lake.display('landing')} already holds extracts; use an empty lake or --delta")
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("people", total=args.people)
        summary = generate(lake, args.people, args.seed, workers=args.workers, progress=lambda n: bar.advance(task, n))
    _progress(
        f"generated {summary.records:,} records for {summary.people:,} people ({summary.networks:,} planted networks) "
        f"across {len(summary.records_per_system)} systems in {time.monotonic() - started:.1f}s -> {lake.display('landing')}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from veracity.pipeline import run

    lake = Lake.open(args.lake)
    summary = run(lake, args.sources, progress=_progress, full=args.full)
    if summary is None:
        _progress("no new batches in landing; the published snapshot is unchanged")
        return 0
    t = summary.totals
    scope = (f"{summary.records_scored:,} changed records scored, {summary.persons_affected:,} earlier persons re-resolved"
             if summary.mode == "incremental" else "every record scored")
    out.print(
        f"run {summary.run_id} ({summary.mode}): {t.records_in:,} records in, {t.records_clean:,} clean, "
        f"{t.records_quarantined:,} quarantined; {summary.records_resolved:,} records -> "
        f"{summary.persons:,} persons ({scope})"
    )
    if summary.consistency:
        c = summary.consistency
        out.print(f"consistency with the previous snapshot: pairwise agreement {c.pairwise_agreement:.4f} "
                  f"over {c.records_compared:,} records; {c.persons_differing:,} persons differ")
    if t.deletions:
        console.print(f"applied {t.deletions:,} deletions: the records are gone from the new snapshot")
    for problem in t.rejected_batches:
        console.print(f"[yellow]batch rejected[/yellow] {problem}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from veracity.snapshots import runs

    listed = runs(Lake.open(args.lake))
    if not listed:
        raise VeracityError(f"no published snapshot in {Lake.open(args.lake).display('curated')}")
    table = RichTable("current", "published_at", "model", "records in", "persons", "comparisons", "links", "review")
    table.add_column("run_id", no_wrap=True)
    for r in listed:
        table.add_row("*" if r["current"] else "", (r["published_at"] or "")[:19], r["model_version"] or "",
                      *(f"{r[k]:,}" if r.get(k) is not None else "" for k in ("records_in", "persons", "comparisons", "links", "review_queue")),
                      r["run_id"])
    out.print(table)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from veracity.snapshots import current_run_id, rollback

    lake = Lake.open(args.lake)
    before = current_run_id(lake)
    rollback(lake, args.to)
    _progress(f"snapshot {args.to} is current (was {before}); the next run applies any batch it does not hold")
    return 0


def _write_table(table: pa.Table, path: str) -> None:
    if path.endswith(".parquet"):
        pq.write_table(table, path)
    elif path.endswith(".csv"):
        pacsv.write_csv(_neutralise_formulas(table), path)
    else:
        raise VeracityError(f"--out {path}: use a .csv or .parquet file name")


def _neutralise_formulas(table: pa.Table) -> pa.Table:
    """Prefix text that a spreadsheet would run as a formula (CSV injection) with a quote."""
    import pyarrow.compute as pc

    columns = []
    for col in table.columns:
        if pa.types.is_string(col.type):
            col = pc.replace_substring_regex(col, r"^([=+\-@\t\r])", r"'\1")
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def cmd_report(args: argparse.Namespace) -> int:
    from veracity.report import write_report

    lake = _published_lake(args.lake)
    out.print(f"wrote {write_report(lake, args.out)}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from veracity.sql import query

    lake = Lake.open(args.lake)
    table = query(lake, args.query)
    if args.out:
        _write_table(table, args.out)
        _progress(f"wrote {table.num_rows:,} rows to {args.out}")
        return 0
    grid = RichTable(*table.column_names, show_lines=False)
    for row in table.slice(0, args.limit).to_pylist():
        grid.add_row(*("" if v is None else str(v) for v in row.values()))
    out.print(grid)
    if table.num_rows > args.limit:
        console.print(f"{table.num_rows:,} rows; showing {args.limit}. Use --out FILE.csv for all.")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from veracity.evaluate import evaluate

    result = evaluate(Lake.open(args.lake))
    if args.json:
        out.print_json(json.dumps(result.as_dict()))
        return 0
    out.print(_evaluation_text(result))
    return 0


def _evaluation_text(result) -> str:
    return (
        f"records {result.records:,}; true persons {result.true_persons:,}; predicted persons {result.predicted_persons:,}\n"
        f"pairwise  precision {result.pairwise.precision:.4f}  recall {result.pairwise.recall:.4f}  F1 {result.pairwise.f1:.4f}\n"
        f"B-cubed   precision {result.bcubed.precision:.4f}  recall {result.bcubed.recall:.4f}  F1 {result.bcubed.f1:.4f}"
        + (f"\npersons holding two different PNC ids: {result.persons_with_two_pnc_ids}"
           if result.persons_with_two_pnc_ids is not None else "")
        + (f"\nblocking recall: {result.blocking['direct']:.4f} of true pairs compared directly, "
           f"{result.blocking['reachable']:.4f} reachable through compared pairs "
           f"(measured on {result.blocking['share_of_persons']:.0%} of the true persons)" if result.blocking else "")
        + (f"\nassociation networks: {result.networks['networks_found']:,} found; the {result.networks['planted_networks']:,} "
           f"planted recovered with adjusted Rand index {result.networks['adjusted_rand_index']:.4f} over their "
           f"{result.networks['members']:,} members" if result.networks else "")
    )


def cmd_train(args: argparse.Namespace) -> int:
    import duckdb

    from veracity.pipeline import current_records, trained_model

    lake = Lake.open(args.lake)
    if not lake.exists("clean", "clean_person"):
        raise VeracityError(f"no clean records in {lake.display('clean')}: run 'veracity run --lake {args.lake}' first")
    records = current_records(duckdb.connect(), lake)
    if records.num_rows < 2:
        raise VeracityError("too few clean records to train on")
    trained = trained_model(lake, records, _progress, seed=args.seed, retrain=True)
    s = trained.summary
    out.print(
        f"model {trained.version}: trained on {s['records']:,} records in {s['seconds']}s; "
        f"λ = {s['probability_two_random_records_match']:.3g}. Later runs use it; saved under "
        f"{lake.display('models', trained.version)}"
    )
    return 0


def cmd_review_import(args: argparse.Namespace) -> int:
    from veracity.review import import_decisions

    lake = Lake.open(args.lake)
    decisions = import_decisions(lake, args.file)
    counts = {d: decisions.column("decision").to_pylist().count(d) for d in ("must_link", "cannot_link")}
    out.print(
        f"recorded {decisions.num_rows:,} decisions ({counts['must_link']:,} must_link, {counts['cannot_link']:,} cannot_link); "
        "the next run honours them"
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from veracity.explain import explain

    explanation = explain(Lake.open(args.lake), args.left, args.right, chart_path=args.html)
    out.print(explanation.as_text(), markup=False)
    if args.html:
        _progress(f"wrote the waterfall chart to {args.html}")
    return 0


def _published_lake(path: str) -> Lake:
    lake = Lake.open(path)
    if not lake.exists("curated", "CURRENT.json"):
        raise VeracityError(f"no published snapshot in {lake.display()}: run 'veracity run --lake {path}' first")
    return lake


def cmd_serve(args: argparse.Namespace) -> int:
    from veracity.search.server import SearchServer

    lake = _published_lake(args.lake)
    server = SearchServer(lake, args.host, args.port)
    _progress("loading the search index from the published snapshot")
    index = server.service().index
    _progress(f"indexed {index.size['records']:,} records of {index.size['persons']:,} persons (snapshot {index.run_id})")
    out.print(f"serving person search on {server.url}/ (mint a token with: veracity token --lake {args.lake} --user NAME --group officer)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from veracity.search.auth import LocalSigner

    try:
        token = LocalSigner(Lake.open(args.lake)).mint(args.user, args.group, args.ttl)
    except ValueError as exc:
        raise VeracityError(str(exc)) from None
    print(token)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from veracity.search.audit import AuditLog

    table = AuditLog(Lake.open(args.lake)).entries(user=args.user, person_id=args.person, purpose=args.purpose,
                                                   since=args.since, outcome=args.outcome)
    if args.out:
        if args.out.endswith(".csv"):  # lists as ';'-separated text
            import pyarrow.compute as pc

            for name in ("groups", "person_ids"):
                table = table.set_column(table.schema.get_field_index(name), name, pc.binary_join(table.column(name), ";"))
        _write_table(table, args.out)
        _progress(f"wrote {table.num_rows:,} audit entries to {args.out}")
        return 0
    grid = RichTable("time", "user", "groups", "purpose", "route", "outcome", "status", "persons", "query")
    for row in table.to_pylist():
        grid.add_row(row["time"], row["user"] or "-", ",".join(row["groups"] or []), row["purpose"] or "-", row["route"],
                     row["outcome"], str(row["status"]), ",".join(row["person_ids"] or []), row["query"])
    out.print(grid)
    console.print(f"{table.num_rows:,} entries")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from veracity.demo import run_demo

    summary = run_demo(args.lake, people=args.people, seed=args.seed, progress=_progress, direct=args.direct)
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veracity",
        description="Resolve police person records from many source systems into one trusted view.",
    )
    parser.add_argument("--version", action="version", version=f"veracity {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lake_help = "lake root: a local directory or s3://bucket/prefix (AWS_ENDPOINT_URL is honoured)"

    p = sub.add_parser("generate", help="write synthetic extracts for the eleven systems, with ground truth")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--people", type=_positive_int, default=1000, help="people in the population (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--delta", action="store_true", help="write a follow-on batch for the lake's existing population")
    p.add_argument("--batch", type=_positive_int, help="with --delta: which follow-on batch (1, 2, ...)")
    p.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: up to 2)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", help="scrub, match and publish every batch in landing not yet processed")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--sources", default=None, help="directory of source configs (default: the repo's sources/)")
    p.add_argument("--full", action="store_true",
                   help="re-resolve every current record, not only the changes, and report agreement with the last snapshot")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("runs", help="the kept snapshots, newest last, with each run's figures")
    p.add_argument("--lake", required=True, help=lake_help)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("rollback", help="make an earlier snapshot current")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--to", required=True, metavar="RUN_ID", help="a run id listed by 'veracity runs'")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("sql", help="run Athena-dialect SQL over the published snapshot")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--out", help="write all rows to FILE.csv or FILE.parquet instead of printing")
    p.add_argument("--limit", type=_positive_int, default=50, help="rows to print (default 50)")
    p.add_argument("query", help='SQL, e.g. "SELECT count(*) FROM person"')
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("report", help="write one self-contained HTML page of charts about the published snapshot")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--out", default="veracity-report.html", help="the page to write (default ./veracity-report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("evaluate", help="precision, recall and F1 of person_xref against the ground truth")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="retrain the linkage model on the current clean records; later runs use it")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--seed", type=int, default=42, help="random seed for sampling (default 42)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("explain", help="the evidence for and against two records being one person")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--html", help="also save Splink's waterfall chart to this self-contained HTML file")
    p.add_argument("left", help="a record as SOURCE:ID, e.g. custody:C000123")
    p.add_argument("right", help="the other record as SOURCE:ID")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("review", help="clerical review of uncertain pairs")
    review_sub = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    r = review_sub.add_parser(
        "import", help="record reviewers' decisions from a CSV or Parquet file (the review_queue with 'decision' filled in)"
    )
    r.add_argument("--lake", required=True, help=lake_help)
    r.add_argument("file", help="FILE.csv or FILE.parquet with unique_id_l, unique_id_r, decision (must_link|cannot_link)")
    r.set_defaults(func=cmd_review_import)

    p = sub.add_parser("serve", help="serve the person search API and its web page over the published snapshot")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="mint a token for 'veracity serve', signed with the lake's local key")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--user", required=True, help="who the token is for")
    p.add_argument("--group", required=True, action="append", help="officer, analyst or admin (repeat for more)")
    p.add_argument("--ttl", type=_positive_int, default=3600, help="seconds the token is valid (default 3600)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("audit", help="list the search audit log: who consulted what, when and why")
    p.add_argument("--lake", required=True, help=lake_help)
    p.add_argument("--user", help="only this user's requests")
    p.add_argument("--person", help="only requests that returned this person id")
    p.add_argument("--purpose", help="only requests made for this purpose")
    p.add_argument("--outcome", help="only this outcome: answered, redirected, bad_request, unauthorised, not_found, error")
    p.add_argument("--since", help="only requests at or after this ISO time, e.g. 2026-11-01")
    p.add_argument("--out", help="write the entries to FILE.csv or FILE.parquet")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("demo", help="generate, run and evaluate on a fresh synthetic lake, then summarise")
    p.add_argument("--lake", default="demo-lake", help="demo lake directory (default ./demo-lake; recreated)")
    p.add_argument("--people", type=_positive_int, default=20_000, help="people (default 20000, about 200,000 records)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--direct", action="store_true",
                   help="run the pipeline on the directory directly, not driven by upload events on local moto S3")
    p.set_defaults(func=cmd_demo)
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VeracityError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130
    except Exception as exc:  # a bug, not bad input: still one line unless asked
        if args.debug or os.environ.get("VERACITY_DEBUG"):
            raise
        console.print(f"[red]internal error:[/red] {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (rerun with --debug for a traceback)")
        return 2


if __name__ == "__main__":
    sys.exit(main())
