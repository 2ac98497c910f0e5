"""One self-contained HTML page about a lake's published snapshot: headline figures and
charts of records per system, quarantine reasons, duplicate reduction, match
probabilities, cluster sizes, crime trends and the largest networks.

Charts are Vega-Lite specifications drawn by the Vega libraries that Splink ships
(the same ones its offline charts inline), written into the page once: the page loads
nothing from anywhere and works offline. Each chart's data comes from the snapshot
by ``veracity.sql`` (the tables and views an analyst queries).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime

import duckdb
from splink.internals.html_utils import load_chart_libraries

from veracity import snapshots
from veracity.lake import Lake
from veracity.sql import connect, transpile

TOP_NETWORKS = 10


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    return con.sql(transpile(sql)).to_arrow_table().to_pylist()


def _bar(title: str, rows: list[dict], x: str, y: str, *, x_title: str, y_title: str, colour: str | None = None,
         horizontal: bool = True) -> dict:
    category, value = ({"field": y, "type": "nominal", "title": y_title, "sort": "-x"},
                       {"field": x, "type": "quantitative", "title": x_title})
    encoding = {"y": category, "x": value} if horizontal else {"x": category | {"sort": None}, "y": value}
    if colour:
        encoding["color"] = {"field": colour, "type": "nominal", "title": None}
        encoding["yOffset" if horizontal else "xOffset"] = {"field": colour}
    return {"title": title, "data": {"values": rows}, "mark": {"type": "bar", "tooltip": True},
            "encoding": encoding, "width": 560}


def charts(lake: Lake, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, dict]:
    """The page's charts (Vega-Lite specifications), by id; ``con``: the snapshot's
    connection (``veracity.sql.connect``), when the caller has one open."""
    con = con or connect(lake)
    reduction = _rows(con, "SELECT * FROM duplicate_reduction WHERE source_system <> 'all systems'")
    per_system = [{"source_system": r["source_system"], "count": r[k], "measure": label}
                  for r in reduction for k, label in (("records_in", "records in"), ("persons_out", "persons out"))]
    quarantine = _rows(con, "SELECT reason_codes AS reason, count(*) AS rows_quarantined FROM quarantine GROUP BY 1")
    probabilities = _rows(con, """
        SELECT floor(match_probability * 20) / 20 AS bin, count(*) AS pairs FROM match_pairs GROUP BY 1 ORDER BY 1
    """)
    sizes = _rows(con, """
        SELECT records_per_person, persons FROM cluster_sizes
        WHERE run_id = (SELECT max(run_id) FROM cluster_sizes) ORDER BY 1
    """)
    trends = _rows(con, """
        SELECT month, category, sum(offences) AS offences FROM crime_trends GROUP BY 1, 2 ORDER BY 1, 2
    """)
    networks = _rows(con, f"SELECT network_id, members, co_offences, most_connected FROM networks "
                           f"ORDER BY members DESC, network_id LIMIT {TOP_NETWORKS}")
    return {
        "records": _bar("Records in and persons out, per system", per_system, "count", "source_system",
                        x_title="records / persons", y_title="system", colour="measure"),
        "quarantine": _bar("Rows quarantined, by reason", quarantine, "rows_quarantined", "reason",
                           x_title="rows", y_title="reason"),
        "reduction": _bar("Duplicate reduction: records per person, per system", reduction, "records_per_person",
                          "source_system", x_title="records per person", y_title="system"),
        "probability": {
            "title": "Match probability of the scored pairs kept (above the review floor)",
            "data": {"values": probabilities}, "mark": {"type": "bar", "tooltip": True}, "width": 560,
            "encoding": {"x": {"field": "bin", "type": "quantitative", "bin": {"binned": True, "step": 0.05},
                               "title": "match probability"},
                         "x2": {"expr": "datum.bin + 0.05"},
                         "y": {"field": "pairs", "type": "quantitative", "scale": {"type": "symlog"}, "title": "pairs"}},
        },
        "sizes": _bar("Cluster sizes: persons by the records they hold", sizes, "persons", "records_per_person",
                      x_title="persons", y_title="records per person", horizontal=False),
        "trends": {
            "title": "Crimes recorded per month, by offence category", "data": {"values": trends}, "width": 560,
            "mark": {"type": "line", "point": True, "tooltip": True},
            "encoding": {"x": {"field": "month", "type": "temporal", "title": "month"},
                         "y": {"field": "offences", "type": "quantitative", "title": "crimes"},
                         "color": {"field": "category", "type": "nominal", "title": None}},
        },
        "networks": _bar(f"The largest association networks (up to {TOP_NETWORKS})", networks, "members", "network_id",
                         x_title="members", y_title="network"),
    }


def _headline(lake: Lake, con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    snapshot = snapshots.read_snapshot(lake)
    totals = _rows(con, "SELECT * FROM duplicate_reduction WHERE source_system = 'all systems'")
    quarantined = _rows(con, "SELECT count(*) AS n FROM quarantine")[0]["n"]
    networks = _rows(con, "SELECT count(*) AS n FROM networks")[0]["n"]
    records, persons = (totals[0]["records_in"], totals[0]["persons_out"]) if totals else (0, 0)
    return [
        ("snapshot", snapshot["run_id"]), ("published", snapshot.get("published_at", "")),
        ("records resolved", f"{records:,}"), ("persons", f"{persons:,}"),
        ("records per person", f"{records / persons:.2f}" if persons else "-"),
        ("rows quarantined", f"{quarantined:,}"), ("association networks", f"{networks:,}"),
    ]


def _json(value) -> str:
    """JSON safe inside a <script> element."""
    def default(o):
        return o.isoformat() if isinstance(o, date | datetime) else float(o)
    return json.dumps(value, default=default).replace("</", "<\\/")


def render(lake: Lake) -> str:
    """The report page as one HTML string."""
    con = connect(lake)  # one connection for every figure on the page
    specs = charts(lake, con)
    libraries = load_chart_libraries()
    scripts = "".join(f"<script>{libraries[name]}</script>\n" for name in ("vega", "vega-lite", "vega-embed"))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in _headline(lake, con))
    divs = "".join(f'<section><div id="chart-{name}" class="chart"></div></section>\n' for name in specs)
    embeds = "".join(
        f'vegaEmbed("#chart-{name}", {_json(spec)}, {{actions: false, renderer: "svg"}});\n' for name, spec in specs.items()
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Veracity report: {html.escape(lake.display())}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; }}
th, td {{ text-align: left; padding: .25rem 1rem .25rem 0; border-bottom: 1px solid #ddd; }}
section {{ margin: 2rem 0; }}
</style>
{scripts}</head><body>
<h1>Veracity report</h1>
<p>Lake {html.escape(lake.display())}; generated {generated}. Synthetic data only outside production.</p>
<table>{rows}</table>
{divs}<script>
{embeds}</script>
</body></html>
"""


def write_report(lake: Lake, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(lake))
    return path
