"""The checked-in contract document is exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

from tickstock.contracts import MESSAGE_TYPES, docs

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def test_contract_document_is_current() -> None:
    assert DOC.read_text() == docs.render(), (
        "docs/contract.md is stale: run `python -m tickstock.contracts.docs --write`")


def test_document_has_a_schema_for_every_message() -> None:
    text = docs.render()
    for message_type in MESSAGE_TYPES:
        assert f"### `{message_type}`" in text


def test_check_mode_detects_staleness(tmp_path: Path) -> None:
    target = tmp_path / "contract.md"
    assert docs.main(["--check", str(target)]) == 1
    assert docs.main(["--write", str(target)]) == 0
    assert docs.main(["--check", str(target)]) == 0
    target.write_text(target.read_text() + "edited\n")
    assert docs.main(["--check", str(target)]) == 1
