"""Job kind ``voltage_report``: samples outside ANSI C84.1 Range A per meter and phase.

Reads a voltdump CSV (one row per node: ``node_name,voltA_mag,...``) or a recorder CSV (a
``timestamp`` column, then one column per measured voltage) and counts, per meter, the
samples below ``low_pu`` and above ``high_pu`` of the nominal voltage, and how long the
voltage stayed outside (samples times the recording interval).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.jobkit import JobContext, JobError, job_kind
from gridlabd_job_examples.csv_summary import pick_csv
from gridlabd_job_examples.gridlabd_csv import number, read_table

_PHASE_MAG = re.compile(r"^volt([ABC])_mag$")
_PHASE_REAL = re.compile(r"^volt([ABC])_real$")
_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


class Parameters(Schema):
    nominal_voltage = fields.Float(
        required=True,
        validate=validate.Range(min=0, min_inclusive=False),
        metadata={"description": "Nominal line-to-neutral voltage in volts (e.g. 2401.7771)"},
    )
    low_pu = fields.Float(load_default=0.95, validate=validate.Range(min=0, max=2))
    high_pu = fields.Float(load_default=1.05, validate=validate.Range(min=0, max=2))
    file = fields.String(load_default=None, validate=validate.Length(min=1, max=255))
    interval_seconds = fields.Float(
        load_default=None,
        validate=validate.Range(min=0, min_inclusive=False),
        metadata={"description": "Seconds per sample; default: from the timestamps"},
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("low_pu", 0.95) >= data.get("high_pu", 1.05):
            raise ValidationError("Must be above low_pu", field_name="high_pu")


def _voltdump_samples(header: list[str], rows: Any) -> dict[str, list[float]]:
    """meter:phase -> [volts] from a voltdump (magnitudes, or real and imaginary parts)."""
    samples: dict[str, list[float]] = {}
    for row in rows:
        cells = dict(zip(header, row, strict=False))
        node = cells.get(header[0], "").strip()
        for name in header:
            phase = _PHASE_MAG.match(name) or _PHASE_REAL.match(name)
            if phase is None:
                continue
            value = number(cells.get(name, ""))
            if value is None:
                continue
            if name.endswith("_real"):
                imag = number(cells.get(f"volt{phase.group(1)}_imag", "0")) or 0.0
                value = abs(complex(value, imag))
            if value > 0:  # a phase the node does not have reads 0
                samples.setdefault(f"{node}:{phase.group(1)}", []).append(value)
    return samples


def _recorder_samples(header: list[str], rows: Any) -> tuple[dict[str, list[float]], float | None]:
    """column -> [volts] from a recorder, and the interval its first two timestamps give."""
    samples: dict[str, list[float]] = {name: [] for name in header[1:]}
    times: list[datetime] = []
    for row in rows:
        found = _TIME.search(row[0]) if row else None
        if found and len(times) < 2:
            times.append(datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S"))
        for name, cell in zip(header[1:], row[1:], strict=False):
            value = number(cell)
            if value is not None:
                samples[name].append(value)
    interval = (times[1] - times[0]).total_seconds() if len(times) == 2 else None
    return {k: v for k, v in samples.items() if v}, interval


def assess(samples: list[float], nominal: float, low: float, high: float, interval: float) -> dict:
    pu = [value / nominal for value in samples]
    below = sum(1 for v in pu if v < low)
    above = sum(1 for v in pu if v > high)
    return {
        "samples": len(pu),
        "below": below,
        "above": above,
        "outside": below + above,
        "min_pu": round(min(pu), 5),
        "max_pu": round(max(pu), 5),
        "seconds_outside": (below + above) * interval,
    }


def report(path: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    header, rows = read_table(path)
    if not header:
        raise JobError(f"{path.name} has no header line")
    if header[0].lower() == "timestamp":
        samples, found_interval = _recorder_samples(header, rows)
        interval = parameters["interval_seconds"] or found_interval or 1.0
    else:
        samples, interval = _voltdump_samples(header, rows), parameters["interval_seconds"] or 1.0
    if not samples:
        raise JobError(f"{path.name} has no voltage values (columns: {', '.join(header)})")
    nominal, low, high = parameters["nominal_voltage"], parameters["low_pu"], parameters["high_pu"]
    meters = {
        name: assess(values, nominal, low, high, interval)
        for name, values in sorted(samples.items())
    }
    return {
        "file": path.name,
        "standard": "ANSI C84.1 Range A" if (low, high) == (0.95, 1.05) else "custom",
        "nominal_voltage": nominal,
        "low_pu": low,
        "high_pu": high,
        "interval_seconds": interval,
        "meters_with_violations": sum(1 for m in meters.values() if m["outside"]),
        "meters": meters,
    }


@job_kind(
    "voltage_report",
    parameters=Parameters,
    title="Voltage-violation report (ANSI C84.1)",
    timeout_seconds=600,
)
def voltage_report(context: JobContext) -> list[str]:
    """Per meter and phase: samples below 0.95 pu and above 1.05 pu (ANSI C84.1 Range A,
    or the limits given) and the time spent outside, from a recorder or voltdump CSV."""
    source = pick_csv(context, context.parameters["file"])
    with context.step(f"Reading {source.name}", percent=20):
        result = report(source, context.parameters)
    bad, total = result["meters_with_violations"], len(result["meters"])
    context.status(f"{bad} of {total} meters outside the range", percent=80)
    context.log(
        f"{bad} of {total} meters have samples outside {result['low_pu']}-{result['high_pu']} pu"
    )
    (context.folder / "voltage_report.json").write_text(json.dumps(result, indent=2))
    with open(context.folder / "voltage_report.csv", "w") as out:
        out.write("meter,samples,below,above,min_pu,max_pu,seconds_outside\n")
        for name, m in result["meters"].items():
            out.write(
                f"{name},{m['samples']},{m['below']},{m['above']},{m['min_pu']},{m['max_pu']},"
                f"{m['seconds_outside']:g}\n"
            )
    return ["voltage_report.json", "voltage_report.csv"]
