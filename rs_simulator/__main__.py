"""`python -m rs_simulator --host 127.0.0.1 --port PORT`: run the simulator in one uvicorn process."""

import argparse

import uvicorn

from rs_simulator.app import create_app
from rs_simulator.settings import SimulatorSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rs_simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8090, help="TCP port (default: 8090)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    args = parser.parse_args(argv)
    app = create_app(SimulatorSettings())
    # h11 explicitly: the behaviour of broken downloads (faults) is tested with it.
    uvicorn.run(app, host=args.host, port=args.port, http="h11", log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
