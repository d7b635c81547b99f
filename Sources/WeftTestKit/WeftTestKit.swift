// WeftTestKit: deterministic simulation support.
