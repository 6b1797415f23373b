"""Credentials on HTTP requests: API keys, and the OAuth2 resource-owner password grant as the ESA station
interfaces and RS-Server's Keycloak take it (the form posted to the token endpoint, the token reused until
shortly before it expires, then the refresh grant, then a new login)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
from pydantic import SecretStr

from rs_ondemand.errors import OnDemandError, cap

API_KEY_HEADER = "x-api-key"
"""RS-Server's API-key header (rs-server `authentication.py`: `APIKEY_HEADER`)."""
TOKEN_MARGIN_S = 60
"""Refresh a token this long before it expires, so a download never starts with a token about to lapse."""


@dataclass(frozen=True)
class PasswordLogin:
    """Where and as whom to log in (the secrets stay SecretStr until the form is built)."""

    name: str
    """Who we log in to, for messages."""
    token_url: str
    username: str
    password: SecretStr
    client_id: str | None = None
    client_secret: SecretStr | None = None
    timeout_s: float = 60.0


class OAuth2Tokens:
    """The access token of one login, shared by every request of a worker (one login at a time)."""

    def __init__(
        self,
        login: PasswordLogin,
        http: httpx.AsyncClient,
        unavailable: type[OnDemandError],
        refused: type[OnDemandError],
    ) -> None:
        self.login = login
        self._http = http
        self._unavailable, self._refused = unavailable, refused
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._access_expiry = 0.0
        self._refresh: str | None = None
        self._refresh_expiry = 0.0

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            now = time.monotonic()
            if renew:
                self._access = None
            if self._access and now < self._access_expiry - TOKEN_MARGIN_S:
                return self._access
            if self._refresh and now < self._refresh_expiry - TOKEN_MARGIN_S:
                grant = {"grant_type": "refresh_token", "refresh_token": self._refresh}
                if await self._request(grant, now):
                    return self._access  # type: ignore[return-value]
            await self._request(self._password_grant(), now, required=True)
            return self._access  # type: ignore[return-value]

    def _password_grant(self) -> dict[str, str]:
        login = self.login
        return {
            "grant_type": "password",
            "client_id": login.client_id or "",
            "client_secret": login.client_secret.get_secret_value() if login.client_secret else "",
            "username": login.username,
            "password": login.password.get_secret_value(),
        }

    async def _request(self, form: dict[str, str], now: float, *, required: bool = False) -> bool:
        name = self.login.name
        try:
            response = await self._http.post(self.login.token_url, data=form, timeout=self.login.timeout_s)
        except httpx.HTTPError as err:
            raise self._unavailable(f"{name} token endpoint unreachable: {err!r}") from err
        if response.status_code >= 500:
            raise self._unavailable(f"{name} token endpoint answered {response.status_code}")
        if response.status_code != 200:
            if required:
                raise self._refused(
                    f"{name} refused our credentials ({response.status_code}): {cap(response.text, 300)}"
                )
            return False
        body = response.json()
        self._access = body["access_token"]
        self._access_expiry = now + float(body.get("expires_in", 300))
        self._refresh = body.get("refresh_token")
        self._refresh_expiry = now + float(body.get("refresh_expires_in", 0))
        return True


class LoginConfig(Protocol):
    """What a station's or the catalog's settings say about their OAuth2 login."""

    @property
    def token_url(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> SecretStr | None: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def client_secret(self) -> SecretStr | None: ...
    @property
    def timeout_s(self) -> float: ...


def tokens_for(
    name: str,
    config: LoginConfig,
    http: httpx.AsyncClient,
    unavailable: type[OnDemandError],
    refused: type[OnDemandError],
) -> OAuth2Tokens | None:
    """The token source of `config`'s login; None when it configures none."""
    if not (config.token_url and config.username and config.password):
        return None
    login = PasswordLogin(
        name=name,
        token_url=config.token_url,
        username=config.username,
        password=config.password,
        client_id=config.client_id,
        client_secret=config.client_secret,
        timeout_s=config.timeout_s,
    )
    return OAuth2Tokens(login, http, unavailable, refused)
