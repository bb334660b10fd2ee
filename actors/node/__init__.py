"""The node actor: runs the pods bound to its node and reports how they are doing."""
