"""The embedded local stack behind `rs-ondemand stack up|status|down` and the test suite's `stack` fixture."""

from rs_ondemand.stack.errors import StackError
from rs_ondemand.stack.launcher import Stack, StackInfo, default_state_dir
from rs_ondemand.stack.search_attributes import SEARCH_ATTRIBUTES

__all__ = ["SEARCH_ATTRIBUTES", "Stack", "StackError", "StackInfo", "default_state_dir"]
