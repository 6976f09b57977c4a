"""The `epochal` command: run the service (serve, api, worker) and manage its store (migrate)."""
