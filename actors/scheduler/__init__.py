"""The scheduler actor: keeps each deployment's pods and places them on nodes."""
