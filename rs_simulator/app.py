"""FastAPI application factory wiring the control routes and the three stations."""

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from rs_simulator.control_routes import control_router
from rs_simulator.errors import SimulatorError
from rs_simulator.guard import station_guard
from rs_simulator.odata_routes import odata_router
from rs_simulator.settings import SimulatorSettings
from rs_simulator.stac_facade import stac_router
from rs_simulator.state import SimulatorState


async def _simulator_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SimulatorError)
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def create_app(settings: SimulatorSettings | None = None) -> FastAPI:
    """A simulator serving `/{cadip,auxip,prip}` (OData) and `/{...}/stac` (STAC), the named stations of
    `settings.stations` likewise, plus test controls.

    Args:
        settings: defaults to `SimulatorSettings()`, i.e. the `SIMULATOR_*` environment.
    """
    state = SimulatorState.create(settings or SimulatorSettings())
    app = FastAPI(title="rs-ondemand station simulator", description="CADIP, AUXIP and PRIP test stations.")
    app.state.simulator = state
    app.add_exception_handler(SimulatorError, _simulator_error)
    app.include_router(control_router(state))
    for name, profile in state.profiles.items():
        routers = [(odata_router, f"/{name}")] + ([(stac_router, f"/{name}/stac")] if profile.stac else [])
        for router, prefix in routers:
            guard = Depends(station_guard(state, name, prefix))
            app.include_router(router(state, name), prefix=prefix, dependencies=[guard], tags=[prefix])
    return app
