"""`python worker.py`: run a worker with the configuration from the environment (docs/interface.md#worker)."""

from rs_ondemand.worker import main

if __name__ == "__main__":
    main()
