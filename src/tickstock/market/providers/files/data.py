"""CSV files (plain or gzip) into BarFrames.

Layouts are recognised by their header, case-insensitively, in any column order:

    Date,Open,High,Low,Close[,Adj Close],Volume[,Name]     (daily; Kaggle / Yahoo style)
    Date,Open,Close,High,Low,Volume                         (minute; "11/5/2019 9:30")

``Date`` may also be called Datetime/Timestamp/Time, ``Name`` Symbol/Ticker. Times without an
offset are New York wall-clock times (that is how US market files are written); a date alone
is a daily bar. ``Adj Close`` is not stored: bars keep the traded prices. A file with a Name
column may hold several symbols; its rows are grouped per symbol.

Row flaws (wrong number of fields, unparseable date, empty/non-numeric numbers, a Name that is
not the symbol asked for) are reported as RowIssues; an unreadable file (missing columns,
truncated gzip, not text) raises DataValidationError naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import DataValidationError
from tickstock.market.bars import BarFrame, RowIssue

_ALIASES = {
    "date": "ts", "datetime": "ts", "timestamp": "ts", "time": "ts",
    "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
    "vwap": "vwap", "name": "symbol", "symbol": "symbol", "ticker": "symbol",
}
_REQUIRED = ("ts", "open", "high", "low", "close", "volume")
_EXPECTED = "Date,Open,High,Low,Close[,Adj Close],Volume[,Name]"
_STEP_TO_TIMEFRAME = {1: Timeframe.MIN1, 5: Timeframe.MIN5, 15: Timeframe.MIN15, 60: Timeframe.HOUR}


@dataclass
class ParsedFile:
    """Every symbol's bars in one file (not yet validated), and the rows refused while parsing."""

    path: str
    timeframe: Timeframe
    frames: dict[str, tuple[BarFrame, npt.NDArray[np.int64]]] = field(default_factory=dict)
    issues: list[RowIssue] = field(default_factory=list)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (decided by its magic bytes, not its name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataValidationError(f"{path}: truncated or corrupt gzip file ({exc})") from None
    return data


def parse_file(
    path: Path, *, symbol: str | None = None, timeframe: Timeframe | None = None
) -> ParsedFile:
    """Parse a CSV file (plain or gzip); see the module docstring for layouts."""
    return parse_bytes(read_bytes(path), str(path), symbol=symbol, timeframe=timeframe)


def parse_bytes(
    data: bytes, source: str, *, symbol: str | None = None, timeframe: Timeframe | None = None
) -> ParsedFile:
    """Parse CSV bytes (already gunzipped). Well-formed files take pandas' C parser; a file
    with malformed lines takes the csv module, which reports each malformed line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{source}: not a UTF-8 text file ({exc.reason})") from None
    header = next(csv.reader(io.StringIO(text[: text.find("\n") + 1 or None])), [])
    columns = _columns(header, source)
    try:
        table, lines = _fast_table(text, header, columns)
        issues: list[RowIssue] = []
    except (pd.errors.ParserError, ValueError):
        table, lines, issues = _slow_table(text, source, symbol)
    return _parse_table(table, lines, columns, issues, source, symbol=symbol, timeframe=timeframe)


def _fast_table(
    text: str, header: list[str], columns: dict[str, int]
) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.int64]]:
    wanted = sorted(columns.values())  # only these are parsed (not Adj Close, say)
    as_text = {i: object for k, i in columns.items() if k in ("ts", "symbol")}
    frame = pd.read_csv(io.StringIO(text), dtype=as_text, engine="c", skip_blank_lines=False,
                        keep_default_na=False, na_values=[""], header=None, skiprows=1,
                        usecols=wanted)
    if frame.shape[1] != len(wanted):
        raise ValueError("ragged")
    table: dict[str, npt.NDArray[Any]] = {}
    for key, index in columns.items():
        col = frame[index]
        if key in ("ts", "symbol"):
            values = col.to_numpy(dtype=object)
            table[key] = np.where(pd.isna(values), "", values)
        elif col.dtype.kind in "fiu":
            table[key] = col.to_numpy(dtype=np.float64)
        else:
            table[key] = pd.to_numeric(col, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan)
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    blank = table["ts"] == ""
    if blank.any():  # an empty line is not a row: drop it without a report
        blank &= np.logical_and.reduce([np.isnan(v) for k, v in table.items()
                                        if k not in ("ts", "symbol")])
        table = {k: v[~blank] for k, v in table.items()}
        lines = lines[~blank]
    return table, lines


def _slow_table(
    text: str, source: str, symbol: str | None
) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.int64], list[RowIssue]]:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise DataValidationError(f"{source}: not a CSV file ({exc})") from None
    header = rows[0]
    columns = _columns(header, source)
    width = len(header)
    label = symbol or Path(source).name
    issues: list[RowIssue] = []
    good: list[list[str]] = []
    numbers: list[int] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            if row:  # a blank line is not a flaw worth a report
                issues.append(RowIssue(label, f"expected {width} fields, got {len(row)}", row=line))
            continue
        good.append(row)
        numbers.append(line)
    cols: list[tuple[str, ...]] = (
        list(zip(*good, strict=True)) if good else [() for _ in range(width)]
    )
    table: dict[str, npt.NDArray[Any]] = {}
    for key, index in columns.items():
        if key in ("ts", "symbol"):
            table[key] = np.asarray(cols[index], dtype=str)
        else:
            table[key] = _numbers(cols[index])
    return table, np.asarray(numbers, dtype=np.int64), issues


def _parse_table(
    table: dict[str, npt.NDArray[Any]],
    line_no: npt.NDArray[np.int64],
    columns: dict[str, int],
    issues: list[RowIssue],
    source: str,
    *,
    symbol: str | None,
    timeframe: Timeframe | None,
) -> ParsedFile:
    label = symbol or Path(source).name
    ts, time_ok, has_time = _parse_times(table["ts"])
    for i in np.flatnonzero(~time_ok):
        issues.append(RowIssue(label, f"unparseable date {table['ts'][i]!r}", row=int(line_no[i])))
    tf = timeframe or _infer_timeframe(ts[time_ok], has_time, source)
    names = _symbols(table, symbol, len(line_no), source)
    parsed = ParsedFile(source, tf, issues=issues)
    vwap = table.get("vwap")
    for sym, mask in _groups(names, symbol, time_ok, line_no, issues):
        frame = BarFrame(
            sym, tf, ts[mask], table["open"][mask], table["high"][mask], table["low"][mask],
            table["close"][mask], table["volume"][mask],
            vwap[mask] if vwap is not None else np.empty(0),
        )
        parsed.frames[sym] = (frame, line_no[mask])
    return parsed


def _columns(header: list[str], source: str) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = _ALIASES.get(name.strip().lower().lstrip("\ufeff"))
        if key is not None and key not in columns:
            columns[key] = index
    missing = [name for name in _REQUIRED if name not in columns]
    if missing:
        raise DataValidationError(
            f"{source}: wrong column layout, missing {', '.join(missing)} "
            f"(expected {_EXPECTED}; got {','.join(header)})"
        )
    return columns


def _numbers(values: Sequence[str]) -> npt.NDArray[np.float64]:
    series = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    result: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return result


def _parse_times(
    values: npt.NDArray[Any],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], bool]:
    """Times as ns UTC, a validity mask, and whether the column has times of day."""
    sample = str(next((v for v in values if v), ""))
    has_time = ":" in sample
    if not has_time and "-" in sample:
        try:  # fast path: ISO dates, numpy parses them in C
            days = np.asarray(values, dtype=object).astype("datetime64[D]")
            ns = days.astype("datetime64[ns]").astype(np.int64)
            return ns, np.ones(len(ns), dtype=bool), False
        except ValueError:
            pass  # some row is not a date: let pandas mark which
    if "/" in sample:
        fmt = "%m/%d/%Y %H:%M" if has_time else "%m/%d/%Y"
    else:
        fmt = "ISO8601" if has_time else "%Y-%m-%d"
    raw = pd.to_datetime(pd.Series(values, dtype=object), format=fmt, errors="coerce")
    if has_time and getattr(raw.dt, "tz", None) is None:
        raw = raw.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT")
    if getattr(raw.dt, "tz", None) is not None:
        raw = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    valid = raw.notna().to_numpy()
    ns = raw.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(valid, ns, 0), valid, has_time


def _infer_timeframe(ts: npt.NDArray[np.int64], has_time: bool, source: str) -> Timeframe:
    if not has_time:
        return Timeframe.DAY
    steps = np.diff(np.sort(ts)) // 60_000_000_000
    steps = steps[(steps > 0) & (steps <= 60)]
    step = int(np.median(steps)) if steps.size else 1
    timeframe = _STEP_TO_TIMEFRAME.get(step)
    if timeframe is None:
        raise DataValidationError(
            f"{source}: bars are {step} minutes apart; give the timeframe explicitly")
    return timeframe


def _symbols(
    table: dict[str, npt.NDArray[Any]], symbol: str | None, n: int, source: str
) -> npt.NDArray[np.str_]:
    if "symbol" in table:
        # normalise each distinct name once (a file usually names one symbol on every row)
        distinct, index = np.unique(np.asarray(table["symbol"], dtype=str), return_inverse=True)
        normal: npt.NDArray[np.str_] = np.char.upper(np.char.strip(distinct))
        return normal[index]
    if symbol is None:
        raise DataValidationError(
            f"{source}: the file has no Name/Symbol column; give the symbol of its rows")
    return np.full(n, symbol, dtype=object).astype(str)


def _groups(
    names: npt.NDArray[np.str_],
    wanted: str | None,
    time_ok: npt.NDArray[np.bool_],
    line_no: npt.NDArray[np.int64],
    issues: list[RowIssue],
) -> Iterator[tuple[str, npt.NDArray[np.bool_]]]:
    if wanted is not None:
        other = time_ok & (names != wanted)
        for i in np.flatnonzero(other):
            issues.append(RowIssue(wanted, f"row is for symbol {names[i]!r}, not {wanted}",
                                   row=int(line_no[i])))
        yield wanted, time_ok & (names == wanted)
        return
    for sym in sorted(set(names[time_ok].tolist())):
        yield sym, time_ok & (names == sym)
