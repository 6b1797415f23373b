"""Helpers the tests share, by subject. Test modules and conftests import from here, never from one another: a test
module is free to change without breaking its neighbours."""
