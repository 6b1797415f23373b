"""`python worker.py`: run a worker with the configuration from the environment (interface.md)."""

from rs_ondemand.worker import main

if __name__ == "__main__":
    main()
