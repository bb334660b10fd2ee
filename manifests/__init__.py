"""Kubernetes YAML in (validation with field paths) and Kubernetes-shaped objects out."""
