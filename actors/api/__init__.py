"""The API actor: validates and stores desired state on behalf of every client."""
