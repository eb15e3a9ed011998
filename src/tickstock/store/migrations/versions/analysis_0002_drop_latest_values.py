"""Drop ``indicator_latest`` and its triggers: newest values are read from ``indicator_values``.

``analysis_0001`` kept a copy of each (symbol, timeframe, name)'s newest value, maintained by
statement triggers on every write. Nothing reads it any more (the screener and the symbol
reads take the newest row of the ``indicator_values`` primary key, one index probe per
symbol and name), while keeping it cost the daily run half of what writing its values costs
PostgreSQL (5,000 symbols x 52 values: 1.04 -> 0.27 ms of PostgreSQL CPU per symbol without
the triggers).

Upgrade is ``analysis_0001``'s downgrade and downgrade its upgrade (which rebuilds the table
from ``indicator_values``).

Revision ID: analysis_0002
Revises: analysis_0001
"""

import importlib.util
from pathlib import Path
from types import ModuleType

revision = "analysis_0002"
down_revision = "analysis_0001"
branch_labels = None
depends_on = None


def _latest_values_revision() -> ModuleType:
    path = Path(__file__).with_name("analysis_0001_latest_values.py")
    spec = importlib.util.spec_from_file_location("analysis_0001_latest_values", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    _latest_values_revision().downgrade()


def downgrade() -> None:
    _latest_values_revision().upgrade()
