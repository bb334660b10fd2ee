"""The actors of the control plane and the nodes: one role each, state in NATS."""
