// WeftDaemon: the composition root. See docs/architecture.md.
