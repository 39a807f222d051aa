"""What every app shares and no app owns: error classes, input checks, async DB helpers, the tool protocol
and registry, stream events, the agent folder framework (the parts apps register, the pydantic file
models, the problem collector, the JSON Schemas) and admin base classes. `core` imports no app of this
project (tests/test_layers.py keeps it so)."""
