"""One HTTP client per configured station: its credentials (OAuth2 tokens, API key), its OData listings and its
authenticated downloads. Credentials only ever go below the station's download root or to its `redirect_hosts`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from rs_ondemand.activities._auth import API_KEY_HEADER, TOKEN_MARGIN_S, tokens_for
from rs_ondemand.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    OnDemandError,
    StationAuthError,
    StationUnavailableError,
    TransferError,
    UntrustedLocationError,
    cap,
)

__all__ = ["TOKEN_MARGIN_S", "StationClient", "StationClients"]
from rs_ondemand.stations.registry import StationConfig, StationRegistry

MAX_REDIRECTS = 3


class StationClient:
    """One station: its OAuth2 token (password grant, refresh grant, re-login), listings and downloads."""

    def __init__(self, config: StationConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.name = config.name
        self.kind = config.kind
        self.http = http
        self._root = config.download_root
        self._tokens = tokens_for(config.name, config, http, StationUnavailableError, StationAuthError)

    def owns(self, url: str) -> bool:
        """Whether `url` lies below this station's download root (where its credentials may go)."""
        return self._root is not None and url.startswith(self._root)

    def trusts_redirect(self, url: str) -> bool:
        """Whether a redirect to `url` may carry our credentials: inside the station or to a listed host."""
        if self.owns(url):
            return True
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and any(
            host in (parts.hostname, parts.netloc) for host in self.config.redirect_hosts
        )

    async def token(self, *, renew: bool = False) -> str:
        if self._tokens is None:
            raise ConfigurationError(f"no OAuth2 credentials configured for station {self.name!r}")
        return await self._tokens.token(renew=renew)

    async def headers(self, *, renew: bool = False, bearer: bool = True) -> dict[str, str]:
        """Credentials for a request to this station: its API key, and its bearer token if it has a login."""
        headers = {}
        if self.config.api_key:
            headers[API_KEY_HEADER] = self.config.api_key.get_secret_value()
        if bearer and self.config.token_url:
            headers["Authorization"] = f"Bearer {await self.token(renew=renew)}"
        return headers

    async def get_json(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET an OData listing below the station's root, logging in again once on 401/403.

        Raises:
            NotFoundError (404), InvalidInputError (another 4xx: the query was refused),
            StationAuthError, StationUnavailableError (5xx, 429, unreachable).
        """
        if not self.owns(url):
            raise UntrustedLocationError(url)
        for renew in (False, True):
            try:
                response = await self.http.get(
                    url, params=params, headers=await self.headers(renew=renew), timeout=self.config.timeout_s
                )
            except httpx.HTTPError as err:
                raise StationUnavailableError(f"{self.name} unreachable for {url}: {err!r}") from err
            if response.status_code in (401, 403) and not renew:
                continue
            break
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                raise StationUnavailableError(f"{self.name} answered {url} with something else than JSON") from None
            if not isinstance(body, dict):
                raise InvalidInputError(f"{self.name} answered {url} with a JSON {type(body).__name__}, not an object")
            return body
        other = InvalidInputError(f"{self.name} refused the query {response.request.url} ({status})")
        raise _status_error(self.name, url, response, other, detail=cap(response.text, 300))

    @asynccontextmanager
    async def download(self, url: str, *, offset: int = 0) -> AsyncIterator[httpx.Response]:
        """An open streaming response for `url`, authenticated. Redirects are followed: with our credentials
        inside the station and to its `redirect_hosts`, without them anywhere else."""
        if not self.owns(url):
            raise UntrustedLocationError(url)
        range_header = {"Range": f"bytes={offset}-"} if offset else {}
        renewed = False
        for _ in range(MAX_REDIRECTS + 2):
            trusted = self.trusts_redirect(url)
            headers = range_header | (await self.headers(renew=renewed) if trusted else {})
            request = self.http.build_request("GET", url, headers=headers)
            try:
                response = await self.http.send(request, stream=True)
            except httpx.HTTPError as err:
                raise StationUnavailableError(f"{self.name} unreachable for {url}: {err!r}") from err
            try:
                if response.is_redirect:
                    # The CADIP ICD allows a 307 to a storage URL (another host, a presigned URL...).
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code in (401, 403) and trusted and not renewed:
                    renewed = True  # the token lapsed mid-request or was revoked: log in again once
                    continue
                _raise_for_download_status(self.name, url, response)
                yield response
                return
            finally:
                await response.aclose()
        raise TransferError(f"too many redirects or authentication failures downloading {url}")


def _raise_for_download_status(name: str, url: str, response: httpx.Response) -> None:
    if response.status_code not in (200, 206):
        raise _status_error(name, url, response, TransferError(f"{name} answered {response.status_code} for {url}"))


def _status_error(
    name: str, url: str, response: httpx.Response, other: OnDemandError, detail: str = ""
) -> OnDemandError:
    """The error of a station's answer: refused credentials are final, a 404 is a missing entity, 5xx and 429
    are worth retrying; anything else is `other`."""
    status, suffix = response.status_code, f": {detail}" if detail else ""
    if status in (401, 403):
        return StationAuthError(f"{name} refused {url} ({status}){suffix}")
    if status == 404:
        return NotFoundError(f"{name} has nothing at {url} (404){suffix}")
    if status >= 500 or status == 429:
        return StationUnavailableError(f"{name} answered {status} for {url}{suffix}")
    if detail:
        other.args = (f"{other}{suffix}",)
    return other


class StationClients:
    """A client per configured station, found by name (searches) or by download URL (transfers)."""

    def __init__(self, registry: StationRegistry, http: httpx.AsyncClient) -> None:
        self.registry = registry
        self._clients = {name: StationClient(config, http) for name, config in registry.stations.items()}

    def __getitem__(self, name: str) -> StationClient:
        return self._clients[name]

    def for_url(self, url: str) -> StationClient:
        config = self.registry.for_download(url)
        if config is None:
            raise UntrustedLocationError(url)
        return self._clients[config.name]
