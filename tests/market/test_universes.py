"""Universes from files into PostgreSQL: the real S&P 500 constituents file with sectors, the
built-in lists, user lists, union / intersection / difference, and refused input.

Oracle: the same files read with the csv module."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from tickstock.core.errors import DataValidationError, NotFoundError
from tickstock.market.universes import (
    BUILTIN_DIR,
    UniverseCatalog,
    combine,
    import_universe,
    read_universe_file,
    save_custom,
)
from tickstock.market.universes.catalog import sector_slug
from tickstock.store import universes as store


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_sp500_file_loads_with_sectors(pool: ConnectionPool, shared_data: Path) -> None:
    source = shared_data / "universes" / "sp500_constituents.csv"
    rows = _csv(source)
    catalog = UniverseCatalog([shared_data / "universes"])
    assert {"sp500", "nasdaq100", "dow30", "etfs"} <= set(catalog.names())
    with pool.connection() as conn:
        results = import_universe(conn, catalog.load("sp500"))
        assert results["sp500"].added == len(rows) == 503
        assert store.members(conn, "sp500") == sorted(r["Symbol"] for r in rows)
        sectors = Counter(r["GICS Sector"] for r in rows)
        for sector, count in sectors.items():
            assert len(store.members(conn, f"sp500:{sector_slug(sector)}")) == count
        stored = store.symbol_rows(conn, ["MMM", "ABBV"])
        assert stored["MMM"].name == "3M" and stored["MMM"].sector == "Industrials"
        assert stored["ABBV"].sub_industry == "Biotechnology" and stored["ABBV"].cik == "1551152"
        record = store.get_universe(conn, "sp500")
        assert record is not None and record.kind == "index" and record.members == 503
        # re-import: nothing changes
        again = import_universe(conn, catalog.load("sp500"))
        assert not any(r.changed for r in again.values())
        assert store.upsert_symbols(conn, catalog.load("sp500").members) == 0


def test_builtin_lists(pool: ConnectionPool) -> None:
    catalog = UniverseCatalog()
    with pool.connection() as conn:
        for name, size in (("dow30", 30), ("etfs", 30)):
            import_universe(conn, catalog.load(name))
            assert len(store.members(conn, name)) == size
        assert store.symbol_rows(conn, ["SPY"])["SPY"].asset_type == "etf"
        assert store.get_universe(conn, "etfs").kind == "etf"  # type: ignore[union-attr]
        # an ETF list has no sector universes
        assert not [u for u in store.list_universes(conn) if u.name.startswith("etfs:")]


def test_union_intersection_difference(pool: ConnectionPool) -> None:
    dow = {r["Symbol"] for r in _csv(BUILTIN_DIR / "dow30.csv")}
    ndx = {r["Symbol"] for r in _csv(BUILTIN_DIR / "nasdaq100.csv")}
    catalog = UniverseCatalog()
    with pool.connection() as conn:
        import_universe(conn, catalog.load("dow30"))
        import_universe(conn, catalog.load("nasdaq100"))
        assert combine(conn, "big", "union", ["dow30", "nasdaq100"]).total == len(dow | ndx)
        assert store.members(conn, "big") == sorted(dow | ndx)
        combine(conn, "both", "intersection", ["dow30", "nasdaq100"])
        assert store.members(conn, "both") == sorted(dow & ndx)
        combine(conn, "dow_only", "difference", ["dow30", "nasdaq100"])
        assert store.members(conn, "dow_only") == sorted(dow - ndx)
        assert store.get_universe(conn, "both").kind == "derived"  # type: ignore[union-attr]
        with pytest.raises(NotFoundError, match="no universe named 'nope'"):
            combine(conn, "x", "union", ["dow30", "nope"])


def test_custom_lists(pool: ConnectionPool, tmp_path: Path) -> None:
    with pool.connection() as conn:
        first = save_custom(conn, "mine", ["aapl", " MSFT", "NEWCO"])
        assert (first.added, first.removed) == (3, 0)
        assert store.members(conn, "mine") == ["AAPL", "MSFT", "NEWCO"]
        second = save_custom(conn, "mine", ["AAPL", "IBM"])
        assert (second.added, second.removed, second.total) == (1, 2, 2)
        assert save_custom(conn, "mine", ["IBM", "AAPL"]).changed is False
        listing = tmp_path / "watch.txt"
        listing.write_text("# my watch list\nAAPL MSFT\nbrk.b, TSLA  # cars\n\n")
        definition = read_universe_file(listing)
        assert definition.name == "watch" and definition.symbols == ["AAPL", "MSFT", "BRK.B",
                                                                     "TSLA"]
        import_universe(conn, definition)
        assert store.members(conn, "watch") == ["AAPL", "BRK.B", "MSFT", "TSLA"]
        assert store.delete_universe(conn, "watch")
        with pytest.raises(NotFoundError):
            store.members(conn, "watch")


def test_bad_universe_input_is_refused_whole(pool: ConnectionPool, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Symbol,Security\nAAPL,Apple\nNOT A TICKER!,Oops\n")
    with pytest.raises(DataValidationError, match=r"bad.csv line 3: 'NOT A TICKER!'"):
        read_universe_file(bad)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("Ticker Name,Price\nAAPL,1\n")
    with pytest.raises(DataValidationError, match="no Symbol/Ticker column"):
        read_universe_file(wrong)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(DataValidationError, match="lists no symbols"):
        read_universe_file(empty)
    with pytest.raises(DataValidationError, match="not valid"):
        read_universe_file(empty, name="no spaces allowed")
    with pool.connection() as conn:
        with pytest.raises(DataValidationError, match="not tickers: B@D"):
            save_custom(conn, "mine", ["AAPL", "B@D"])
        assert store.list_universes(conn) == []
    with pytest.raises(NotFoundError, match="available: dow30, etfs, nasdaq100"):
        UniverseCatalog().load("sp400")
