"""The ``shoal`` command line: cluster start-up, the actor roles, and kubectl-like commands."""
