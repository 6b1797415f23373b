"""Errors a route raises to answer a JSON error body (the shapes the RS mocks and stac-fastapi use)."""

from typing import Any


class SimulatorError(Exception):
    """An HTTP error answered as `{"message": ...}`, the RS station mocks' shape (OData, auth, faults)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class StacError(SimulatorError):
    """An HTTP error of the STAC facade, answered as `{"code": ..., "description": ...}` like stac-fastapi."""

    CODES = {400: "BadRequest", 401: "Unauthorized", 404: "NotFoundError"}

    def body(self) -> dict[str, Any]:
        return {"code": self.CODES.get(self.status_code, "Error"), "description": self.message}
