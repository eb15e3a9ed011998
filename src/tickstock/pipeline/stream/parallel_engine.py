"""A ``LiveEngine`` spread over worker processes, each owning the symbols hashed to it.

The engine's per-bar work is Python around TA-Lib's C, so one process analyses a burst on one
core. ``ParallelLiveEngine`` starts ``processes`` children (spawned; each runs an
``AnalysisLiveEngine``), sends each child the bars of its symbols, and waits for all of them:
a burst, and the warm-up, take about 1/``processes`` of the time on as many idle cores. The
answers do not change: a symbol's state lives in exactly one child, which sees that symbol's
bars in the order the processor gives them.

A child that dies (killed, out of memory) takes its symbols' state with it: every later call
raises ``EngineLost`` naming it, and the service stops with it so that the supervisor
restarts the role, which warms up again from stored bars (a role without its analysis would
publish nothing for half the market while reporting itself healthy).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import zlib
from collections.abc import Generator, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from tickstock.analysis.results import FoundRows
from tickstock.contracts.common import Timeframe
from tickstock.core.errors import TickStockError
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.engine import BarAnalysis, ChunkAnalysis, EngineLost

_START_TIMEOUT_S = 120.0


def _serve(conn: Connection, spec_names: tuple[str, ...] | None) -> None:
    """A child: answer ``(operation, argument)`` requests until ``stop`` or the pipe closes."""
    from tickstock.market.calendar import nyse
    from tickstock.pipeline.stream.analysis_engine import AnalysisLiveEngine, live_specs
    from tickstock.pipeline.stream.collector import settle_live_state
    from tickstock.pipeline.stream.sessions import SessionLookup

    specs = None if spec_names is None else live_specs(spec_names)
    engine = AnalysisLiveEngine(SessionLookup(nyse()), specs)
    symbols: dict[int, str] = {}  # the parent's symbol ids (``ParallelLiveEngine._ids``)
    conn.send(("ready", None))
    while True:
        try:
            operation, argument = conn.recv()
        except (EOFError, OSError):
            return
        if operation == "stop":
            return
        try:
            if operation == "update_ids":
                named, ids, codes, ts, prices = argument
                symbols.update(named)
                result: Any = engine.update_columns(
                    list(map(symbols.__getitem__, ids.tolist())),
                    list(map(_TIMEFRAME_VALUES.__getitem__, codes.tolist())), ts, prices)
            elif operation == "warm_many":
                result = [engine.warm([LiveBar(*t) for t in history]) for history in argument]
                # the warmed state lives as long as the child: out of the cyclic collector's
                # sight, as the role does with its own (``warmup``, step 5)
                settle_live_state()
            elif operation == "peek":
                result = engine.peek(LiveBar(*argument))
            else:
                raise ValueError(f"unknown operation {operation!r}")
        except Exception as exc:  # the parent re-raises it
            conn.send(("error", exc))
        else:
            conn.send(("ok", result))


# Bars cross the pipes as arrays (warm-up histories and peeks as plain tuples): a symbol as the
# id the parent gave it (its name sent once, with the first request that has it), a timeframe
# as its position in ``_TIMEFRAME_VALUES``, the start time in epoch ns, the prices as one
# array. Answers come back as arrays too: the values, and the detections (``FoundRows``), so
# no process builds an object a detection but the parent's event. Pickling 5,000 slotted
# objects, their datetimes and value dicts cost the parent more than a third of analysing
# them; the symbols' and timeframes' strings, a sixth of what remained.
Packed = tuple[tuple[str, ...], np.ndarray, FoundRows]
_TIMEFRAME_VALUES: tuple[str, ...] = tuple(tf.value for tf in Timeframe)
_TIMEFRAME_CODES: dict[str, int] = {value: k for k, value in enumerate(_TIMEFRAME_VALUES)}


def _fields(bar: LiveBar) -> tuple[Any, ...]:
    return (bar.symbol, bar.timeframe, bar.start, bar.end, bar.open, bar.high, bar.low,
            bar.close, bar.volume, bar.vwap, bar.trades, bar.daily_trend)


def _merge(parts: Sequence[Packed], rows: Sequence[np.ndarray], n: int) -> ChunkAnalysis:
    """The children's answers as one chunk's analysis: ``parts[k]`` answers the bars at
    ``rows[k]`` (ascending) of ``n``."""
    if not parts:
        return ChunkAnalysis.of((), np.empty((n, 0)))
    names = parts[0][0]
    values = np.empty((n, len(names)))
    for (part_names, part_values, _), at in zip(parts, rows, strict=True):
        if part_names != names:
            raise TickStockError(f"analysis processes answered different columns: {names} "
                                 f"and {part_names}")
        values[at] = part_values
    found = FoundRows.concat(parts[0][2].names, [part[2].moved(at)
                                                 for part, at in zip(parts, rows, strict=True)])
    return ChunkAnalysis.of(names, values, found)


class ParallelLiveEngine:
    """``LiveEngine`` over ``processes`` child engines (see the module docstring).

    ``spec_names``: the live set's canonical names (``analysis_engine.LIVE_SPEC_NAMES`` when
    ``None``). ``warmup_bars`` is the plan's of the same specs (no child needed).
    """

    def __init__(self, processes: int, spec_names: tuple[str, ...] | None = None) -> None:
        from tickstock.analysis.plan import plan
        from tickstock.pipeline.stream.analysis_engine import live_specs, warmup_bars

        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        specs = None if spec_names is None else live_specs(spec_names)
        self._warmup_bars = warmup_bars(plan(live_specs() if specs is None else specs))
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for k in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, spec_names), daemon=True,
                               name=f"stream-analysis-{k}")
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        for k in range(processes):
            if not self._conns[k].poll(_START_TIMEOUT_S):
                self.close()
                raise TickStockError(f"stream analysis process {k} did not start")
            self._receive(k)
        self._shards: dict[str, int] = {}
        self._ids: dict[str, int] = {}  # symbol -> its id on the pipes
        self._owners = np.empty(0, dtype=np.intp)  # id -> the child that owns the symbol
        self._unnamed: list[list[tuple[int, str]]] = [[] for _ in self._conns]  # not sent yet

    @property
    def processes(self) -> int:
        return len(self._conns)

    def shard(self, symbol: str) -> int:
        """The child that owns ``symbol`` (stable across runs: CRC-32 of the symbol)."""
        k = self._shards.get(symbol)
        if k is None:
            k = self._shards[symbol] = zlib.crc32(symbol.encode()) % len(self._conns)
        return k

    def warmup_bars(self, timeframe: Timeframe) -> int:
        return self._warmup_bars

    def warm(self, history: Sequence[LiveBar]) -> dict[str, float]:
        return self.warm_many([history])[0]

    def warm_many(self, histories: Sequence[Sequence[LiveBar]]) -> list[dict[str, float]]:
        owners = [self.shard(h[0].symbol) if h else 0 for h in histories]
        answers: list[dict[str, float]] = self._gather(
            *self._send_to("warm_many", [[_fields(b) for b in h] for h in histories], owners))
        return answers

    def update(self, bar: LiveBar) -> BarAnalysis:
        return self.update_many([bar])[0]

    def update_many(self, bars: Sequence[LiveBar]) -> list[BarAnalysis]:
        return self._gather_chunk(*self._send_columns(bars)).bars()

    def update_chunks(self, chunks: Sequence[Sequence[LiveBar]]
                      ) -> Generator[ChunkAnalysis, None, None]:
        """Each chunk's analysis (the children's columns merged by row); the children start on
        the next chunk as soon as this one's answers are in, so they compute while the caller
        publishes. A child holds at most one request at a time (it answers before it reads the
        next): no pipe can fill both ways."""
        if not chunks:
            return
        pending: tuple[list[int], np.ndarray] | None = self._send_columns(chunks[0])
        try:
            for k in range(len(chunks)):
                assert pending is not None
                answers = self._gather_chunk(*pending)
                pending = None
                if k + 1 < len(chunks):
                    pending = self._send_columns(chunks[k + 1])
                yield answers
        finally:  # abandoned early: read the answers nobody will, so the pipes stay in step
            if pending is not None:
                for child in pending[0]:
                    self._receive(child)

    def peek(self, bar: LiveBar) -> BarAnalysis:
        k = self.shard(bar.symbol)
        self._send(k, ("peek", _fields(bar)))
        answer: BarAnalysis = self._receive(k)
        return answer

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(("stop", None))
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    # -- plumbing ------------------------------------------------------------------------------

    def _send_columns(self, bars: Sequence[LiveBar]) -> tuple[list[int], np.ndarray]:
        """Send each child its bars as arrays (see ``Packed``); (the children asked, each bar's
        child) for ``_gather_chunk``."""
        from tickstock.pipeline.stream.analysis_engine import bar_columns

        symbols, timeframes, ts, prices = bar_columns(bars)
        ids = self._ids
        try:
            keys = list(map(ids.__getitem__, symbols))
        except KeyError:  # a symbol's first bar
            for symbol in symbols:
                if symbol not in ids:
                    self._name(symbol)
            keys = list(map(ids.__getitem__, symbols))
        id_column = np.array(keys, dtype=np.int64)
        codes = np.array(list(map(_TIMEFRAME_CODES.__getitem__, timeframes)), dtype=np.int8)
        owner = self._owners[id_column]
        busy = []
        for k in range(len(self._conns)):
            rows = np.flatnonzero(owner == k)
            if rows.shape[0]:
                self._send(k, ("update_ids", (self._unnamed[k], id_column[rows], codes[rows],
                                              ts[rows], prices[rows])))
                self._unnamed[k] = []
                busy.append(k)
        return busy, owner

    def _name(self, symbol: str) -> None:
        """Give ``symbol`` its id; its child learns the name with its next request."""
        key = self._ids[symbol] = len(self._ids)
        if key == len(self._owners):
            self._owners = np.concatenate([self._owners, np.zeros(max(64, key), np.intp)])
        k = self._owners[key] = self.shard(symbol)
        self._unnamed[k].append((key, symbol))

    def _send_to(self, operation: str, items: Sequence[Any],
                 owners: list[int]) -> tuple[list[int], list[int]]:
        """Send each child its items (in order); (the children asked, each item's child) for
        ``_gather``. Each child reads its whole request before it answers, so no pipe can fill
        both ways."""
        parts: list[list[Any]] = [[] for _ in self._conns]
        for item, k in zip(items, owners, strict=True):
            parts[k].append(item)
        busy = [k for k, part in enumerate(parts) if part]
        for k in busy:
            self._send(k, (operation, parts[k]))
        return busy, owners

    def _gather_chunk(self, busy: list[int], owner: np.ndarray) -> ChunkAnalysis:
        """The children's ``update_columns`` answers merged by row (``_merge``); ``owner[i]``
        is the child of bar ``i``."""
        parts: list[Packed] = [self._receive(k) for k in busy]
        return _merge(parts, [np.flatnonzero(owner == k) for k in busy], len(owner))

    def _gather(self, busy: list[int], owners: list[int]) -> list[Any]:
        answers: list[list[Any]] = [[] for _ in self._conns]
        for k in busy:
            answers[k] = self._receive(k)
        taken = [0] * len(self._conns)
        out = []
        for k in owners:
            out.append(answers[k][taken[k]])
            taken[k] += 1
        return out

    def _send(self, k: int, message: tuple[str, Any]) -> None:
        try:
            self._conns[k].send(message)
        except OSError as exc:
            raise self._lost(k, exc) from None

    def _receive(self, k: int) -> Any:
        try:
            status, payload = self._conns[k].recv()
        except (EOFError, OSError) as exc:
            raise self._lost(k, exc) from None
        if status == "error":
            raise payload
        return payload

    def _lost(self, k: int, exc: BaseException) -> EngineLost:
        code = self._procs[k].exitcode if k < len(self._procs) else None
        return EngineLost(f"stream analysis process {k} is gone (exit code {code}): {exc}; "
                              "its symbols' state is lost -- restart the role to warm up again")
