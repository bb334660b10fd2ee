"""The service actor: keeps each service's endpoints and answers discovery by name."""
