"""The HTTP service: app factory, request/response schemas, model loading."""
