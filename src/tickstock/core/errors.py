"""The error tree, grouped by what the operator must do.

    TickStockError
    ├── ConfigurationError      fix the named setting and restart
    ├── ProviderError
    │   ├── ProviderTemporaryError   retry with back-off (timeouts, 5xx)
    │   │   └── ProviderRateLimitedError   retry after the provider's delay (429)
    │   └── ProviderAuthError        fatal: fix the API key
    ├── ContractError           dead-letter the message; the sender is at fault
    ├── DataValidationError     report the row / symbol and skip it
    ├── StoreError              database unreachable or a constraint failed
    ├── InfrastructureError     an embedded or real server could not be started/reached
    └── NotFoundError           the named thing does not exist

Only the CLI turns these into exit codes.
"""

from __future__ import annotations


class TickStockError(Exception):
    """Base of every error TickStock raises on purpose."""

    exit_code = 1


class ConfigurationError(TickStockError):
    """A setting is missing or invalid; the message names it. Fix it and restart."""

    exit_code = 78  # EX_CONFIG


class ProviderError(TickStockError):
    """The market-data provider failed."""


class ProviderTemporaryError(ProviderError):
    """Timeout, connection reset or 5xx: retry with back-off."""


class ProviderRateLimitedError(ProviderTemporaryError):
    """HTTP 429: retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    """The provider refused the credentials: fatal until the key is fixed."""

    exit_code = 77  # EX_NOPERM


class ContractError(TickStockError):
    """A message does not match the contract; it goes to the dead-letter stream."""


class DataValidationError(TickStockError):
    """An input row or value is invalid; the message names the row and the reason."""


class StoreError(TickStockError):
    """PostgreSQL is unreachable, not migrated, or refused a write."""


class InfrastructureError(TickStockError):
    """An embedded or configured server could not be started or reached."""

    exit_code = 69  # EX_UNAVAILABLE


class NotFoundError(TickStockError):
    """The named job, run, symbol or universe does not exist."""
