"""Job kind ``csv_summary``: min, max and mean per column of a recorder CSV, and a plot."""

from __future__ import annotations

import json
from pathlib import Path

from marshmallow import Schema, fields, validate

from app.jobkit import JobContext, JobError, JobKind
from gridlabd_job_examples.gridlabd_csv import number, read_table


class Parameters(Schema):
    file = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "Input to summarise; default: the run's only .csv input"},
    )
    columns = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "Columns to plot (all numeric ones by default)"},
    )
    title = fields.String(load_default="", validate=validate.Length(max=200))


def pick_csv(context: JobContext, name: str | None) -> Path:
    """The input named ``name``, or the only .csv input."""
    if name:
        return context.input(name)
    csvs = sorted(n for n in context.inputs if n.lower().endswith(".csv"))
    if len(csvs) != 1:
        raise JobError(
            f"Give the parameter 'file': the run has {len(csvs)} CSV inputs ({', '.join(csvs)})"
        )
    return context.input(csvs[0])


def summarise(path: Path) -> tuple[dict[str, dict[str, float]], dict[str, list[float]], int]:
    header, rows = read_table(path)
    if not header:
        raise JobError(f"{path.name} has no header line")
    series: dict[str, list[float]] = {name: [] for name in header}
    count = 0
    for row in rows:
        count += 1
        for name, cell in zip(header, row, strict=False):
            value = number(cell)
            if value is not None:
                series[name].append(value)
    numeric = {name: values for name, values in series.items() if values}
    if not numeric:
        raise JobError(f"{path.name} has no numeric column")
    stats = {
        name: {
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "count": len(values),
        }
        for name, values in numeric.items()
    }
    return stats, numeric, count


class CsvSummary(JobKind):
    """Min, max and mean of every numeric column of a GridLAB-D recorder CSV, as JSON and
    CSV, and a PNG plot of the columns."""

    name = "csv_summary"
    title = "Recorder CSV summary"
    Parameters = Parameters
    timeout_seconds = 600

    def run(self, context: JobContext) -> list[str]:
        source = pick_csv(context, context.parameters["file"])
        with context.step(f"Reading {source.name}", percent=10):
            stats, series, rows = summarise(source)
        context.log(f"{rows} rows, {len(stats)} numeric columns")
        with open(context.folder / "summary.csv", "w") as out:
            out.write("column,min,max,mean,count\n")
            for name, s in stats.items():
                out.write(f"{name},{s['min']:.6g},{s['max']:.6g},{s['mean']:.6g},{s['count']}\n")
        (context.folder / "summary.json").write_text(
            json.dumps({"file": source.name, "rows": rows, "columns": stats}, indent=2)
        )
        if context.cancelled():
            return ["summary.json", "summary.csv"]
        with context.step("Plotting", percent=60):
            wanted = context.parameters["columns"] or list(series)
            unknown = [name for name in wanted if name not in series]
            if unknown:
                raise JobError(
                    f"No numeric column(s) {', '.join(unknown)}; have {', '.join(series)}"
                )
            plot(series, wanted, context.parameters["title"] or source.name, "summary.png")
        return ["summary.json", "summary.csv", "summary.png"]


def plot(series: dict[str, list[float]], names: list[str], title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=100)
    for name in names:
        axes.plot(series[name], label=name, linewidth=1)
    axes.set_title(title)
    axes.set_xlabel("sample")
    if len(names) <= 12:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
