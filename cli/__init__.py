"""The server's verbs of the `epochal` command: run the service (serve, api, worker), manage its
store (migrate) and its API keys (keys)."""
