"""Reading GridLAB-D's CSV outputs (recorders, voltdumps): comment lines start with '#',
the header is the last comment line with commas (recorders) or the first line that is not
a number (voltdumps); values may be complex (``+2401.7-0.2j``, polar ``+2401.7-4.1d``) or
carry a unit (``12.3 kWh``), and are read as their magnitude."""

from __future__ import annotations

import cmath
import csv
import math
import re
from collections.abc import Iterator
from pathlib import Path

_COMPLEX = re.compile(r"^([+-]?[\d.]+(?:[eE][+-]?\d+)?)([+-][\d.]+(?:[eE][+-]?\d+)?)([ijdr])$")
_UNIT = re.compile(r"^([+-]?[\d.]+(?:[eE][+-]?\d+)?)\s*[A-Za-z%*/^]+$")


def number(text: str) -> float | None:
    """The value of a cell as a float (a complex's magnitude), or None if not a number."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    found = _COMPLEX.match(text)
    if found:
        first, second, form = float(found.group(1)), float(found.group(2)), found.group(3)
        if form in "ij":
            return abs(complex(first, second))
        return abs(first) if form == "d" else abs(cmath.rect(first, second))
    found = _UNIT.match(text)
    return float(found.group(1)) if found else None


def read_table(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    """The header and the data rows of a GridLAB-D CSV."""
    lines = path.read_text(errors="replace").splitlines()
    header: list[str] = []
    start = 0
    for index, line in enumerate(lines):
        if line.startswith("#"):
            if "," in line:
                header = next(csv.reader([line.lstrip("#").strip()]))
            start = index + 1
            continue
        break
    rows = csv.reader(line for line in lines[start:] if line.strip())
    if not header:
        header = next(rows, [])
    return [name.strip() for name in header], rows
