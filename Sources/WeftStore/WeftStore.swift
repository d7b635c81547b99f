// WeftStore: SQLite persistence. See docs/architecture.md.
