"""The one place Shoal's data models live: desired state, observed state, events, API."""
