"""OAuth2 password/refresh grants and bearer-token checks, one token store per station (RS mock rules)."""

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rs_simulator.errors import SimulatorError
from rs_simulator.settings import SimulatorSettings

# The RS mocks' exact 401 messages (docs/rs-compatibility.md#station-interfaces): clients and tests match on them.
TOKEN_MISSING = "Token is missing!"
TOKEN_INVALID = "Token is invalid!"
TOKEN_EXPIRED = "Token is valid but is expired!"


@dataclass
class _Grant:
    access_expires: float
    refresh_expires: float


class TokenStore:
    """Tokens issued by one station; a token of another station is simply unknown here."""

    def __init__(
        self, settings: SimulatorSettings, clock: Callable[[], float] = time.time, expires_in: int | None = None
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._expires_in = expires_in or settings.token_expires_in
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}

    def token_request(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Answer `POST /oauth2/token` for a password or refresh_token grant.

        Raises:
            SimulatorError: 400 for an unsupported grant, 401 for wrong credentials or refresh token.
        """
        grant_type = form.get("grant_type", "")
        if grant_type == "password":
            s = self._settings
            expected = (s.client_id, s.client_secret, s.username, s.password)
            given = tuple(form.get(k, "") for k in ("client_id", "client_secret", "username", "password"))
            if not all(secrets.compare_digest(a, b) for a, b in zip(given, expected, strict=True)):
                raise SimulatorError(401, "Invalid credentials")
            return self._issue()
        if grant_type == "refresh_token":
            grant = self._refresh.get(form.get("refresh_token", ""))
            if grant is None or grant.refresh_expires <= self._clock():
                raise SimulatorError(401, "Invalid or expired refresh token")
            return self._issue()
        raise SimulatorError(400, f"Unsupported grant_type {grant_type!r}")

    def _issue(self) -> dict[str, Any]:
        self._forget_expired()
        now = self._clock()
        grant = _Grant(now + self._expires_in, now + self._settings.refresh_expires_in)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._access[access] = grant
        self._refresh[refresh] = grant
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self._expires_in,
            "refresh_token": refresh,
            "refresh_expires_in": self._settings.refresh_expires_in,
        }

    def revoke_all(self) -> int:
        """Forget every token issued so far (a station restarted or revoking its sessions); returns how many
        access tokens were forgotten. Clients must log in again with their credentials."""
        revoked = len(self._access)
        self._access.clear()
        self._refresh.clear()
        return revoked

    def _forget_expired(self) -> None:
        # As the RS mocks do: drop grants whose access and refresh tokens are both expired.
        now = self._clock()
        for table in (self._access, self._refresh):
            for token in [t for t, g in table.items() if max(g.access_expires, g.refresh_expires) <= now]:
                del table[token]

    def check(self, authorization: str | None) -> None:
        """Accept an `Authorization: Bearer <token>` header or raise the RS mocks' 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SimulatorError(401, TOKEN_MISSING, {"WWW-Authenticate": "Bearer"})
        grant = self._access.get(token.strip())
        if grant is None:
            raise SimulatorError(401, TOKEN_INVALID, {"WWW-Authenticate": "Bearer"})
        if grant.access_expires <= self._clock():
            raise SimulatorError(401, TOKEN_EXPIRED, {"WWW-Authenticate": "Bearer"})
