"""Who may talk to Shoal's NATS, and what each may do: identities, permissions and TLS."""
