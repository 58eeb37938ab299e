"""`make load`: the load and fault scenarios (see __main__.py)."""
