"""The dialer's HTTP API, Prometheus metrics and the built-in dashboard."""
