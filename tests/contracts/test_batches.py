"""Batch events (``EventBatch``): columns as long as ``symbols``, split into the single events
they stand for, refused at the boundary when a column is short."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tickstock.contracts import Envelope
from tickstock.contracts.events import (
    BarLive,
    BarLiveBatch,
    EventBatch,
    IndicatorAlert,
    IndicatorAlertBatch,
    PatternDetected,
    PatternDetectedBatch,
)
from tickstock.contracts.examples import EXAMPLES
from tickstock.core.errors import ContractError

BATCHES = {BarLiveBatch: BarLive, PatternDetectedBatch: PatternDetected,
           IndicatorAlertBatch: IndicatorAlert}


@pytest.mark.parametrize("batch_type", list(BATCHES))
def test_a_batch_splits_into_validated_single_events(batch_type: type[EventBatch]) -> None:
    batch = EXAMPLES[batch_type.message_type]
    assert isinstance(batch, batch_type)
    singles = batch.split()
    assert [type(s) for s in singles] == [BATCHES[batch_type]] * len(batch.symbols)
    assert [s.symbol for s in singles] == list(batch.symbols)  # type: ignore[attr-defined]
    for single in singles:  # what validation builds from the same fields
        assert single == type(single).model_validate(single.model_dump())


@pytest.mark.parametrize("batch_type", list(BATCHES))
def test_a_short_column_or_no_symbol_is_refused(batch_type: type[EventBatch]) -> None:
    fields = EXAMPLES[batch_type.message_type].model_dump()
    column = batch_type.columns[0]
    with pytest.raises(ValidationError, match=f"{column} has 1 entries for 2 symbols"):
        batch_type.model_validate({**fields, column: fields[column][:1]})
    with pytest.raises(ValidationError, match="symbols"):
        batch_type.model_validate({**fields, "symbols": ()})
    raw = json.loads(Envelope.create(EXAMPLES[batch_type.message_type], source="t").encode())
    raw["data"][column] = raw["data"][column][:1]
    with pytest.raises(ContractError, match=column):
        Envelope.decode(json.dumps(raw))


def test_a_short_indicator_column_is_refused() -> None:
    fields = EXAMPLES[BarLiveBatch.message_type].model_dump()
    with pytest.raises(ValidationError, match=r"indicators\.rsi_14 has 1 entries for 2 symbols"):
        BarLiveBatch.model_validate({**fields, "indicators": {"rsi_14": (1.0,)}})
