"""Policies over desired state that the API and the nodes both enforce."""
