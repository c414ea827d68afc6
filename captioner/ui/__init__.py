"""The window: the only package that imports PySide6 (see docs/architecture.md)."""
