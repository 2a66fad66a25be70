"""The request path: app factory, routes, dependencies, guardrails, telemetry."""
