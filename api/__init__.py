"""The HTTP API: validates specs, writes jobs, enqueues them and serves queries. Never trains."""
