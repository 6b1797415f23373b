"""Pydantic contracts shared by workflows, activities, the starter and the tests."""
