"""The API token check: one shared secret, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="The pipeline API token (TICKSTOCK_API_TOKEN).")
_header = APIKeyHeader(name="X-API-Token", auto_error=False,
                       description="The pipeline API token, as an alternative header.")


def token_guard(expected: str) -> Callable[..., None]:
    """A dependency that lets a request through only with the right token."""
    if not expected:
        raise ValueError("the API token must not be empty")
    expected_bytes = expected.encode()

    def require_token(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> None:
        given = bearer.credentials if bearer is not None else header
        if given is None or not hmac.compare_digest(given.encode(), expected_bytes):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or wrong API token (Authorization: Bearer <TICKSTOCK_API_TOKEN>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
