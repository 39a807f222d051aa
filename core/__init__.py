"""What every app shares and no app owns: error classes, input checks, async DB helpers, the tool protocol
and registry, stream events, the folder-problem collector and admin base classes. `core` imports no app
of this project (import-linter keeps it so)."""
