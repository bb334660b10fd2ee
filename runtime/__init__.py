"""Container runtimes behind one small interface: Podman, and an in-memory stand-in."""
