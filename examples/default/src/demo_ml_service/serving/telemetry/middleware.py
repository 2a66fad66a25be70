"""ASGI middleware: the server span, request id, duration/count metrics and the access log line."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .facade import Telemetry
from .logs import MODEL_VERSION, REQUEST_ID
from .tracing import model_attributes, record_error

log = logging.getLogger(__name__)

# Probes and scrapes are counted in the metrics but produce neither spans nor access log lines.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TelemetryMiddleware:
    """ASGI middleware: server span, request id, duration/count metrics, one access log line."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self._routes: frozenset[str] | None = None
        self._span_names: dict[tuple[str, str], str] = {}

    def routes(self, scope: Scope) -> frozenset[str]:
        """The app's route paths (the `route` label), read once from the app in the scope."""
        if self._routes is None:
            self._routes = frozenset(getattr(r, "path", "") for r in scope["app"].routes)
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t = self.telemetry
        method: str = scope["method"]
        route = scope["path"] if scope["path"] in self.routes(scope) else "other"
        request_id = (
            next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
            or os.urandom(16).hex()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        # The app (Starlette puts itself in the scope) holds the model it serves.
        model = scope["app"].state.model
        token = REQUEST_ID.set(request_id)
        version_token = MODEL_VERSION.set(model.version if model is not None else None)
        start = time.perf_counter()
        try:
            if route in QUIET_ROUTES:
                await self.app(scope, receive, send_with_status)
                return
            if not t.should_trace():
                # Decided before any span work: an untraced request touches no tracing code.
                try:
                    await self.app(scope, receive, send_with_status)
                finally:
                    self.access_log(method, scope["path"], route, status, start, traced=False)
                return
            # No context-manager layers: attach and detach by hand.
            span = t.tracer.start_span(
                self.span_name(method, route),
                kind=SpanKind.SERVER,
                record_exception=False,
                set_status_on_exception=False,
            )
            recording = span.is_recording()  # False only when OTEL_TRACES_SAMPLER declines
            if recording:
                # Few attributes on purpose: each one costs on every traced request.
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "slipway.request_id": request_id,
                        **(model_attributes(model) if model is not None else {}),
                    }
                )
                if route == "other":
                    span.set_attribute("url.path", scope["path"])
            context_token = otel_context.attach(trace.set_span_in_context(span))
            try:
                await self.app(scope, receive, send_with_status)
            except Exception as error:
                if recording:
                    record_error(span, error)
                raise
            finally:
                if recording:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                self.access_log(method, scope["path"], route, status, start, traced=recording)
                span.end()
                otel_context.detach(context_token)
        finally:
            t.observe_request(route, method, status, time.perf_counter() - start)
            MODEL_VERSION.reset(version_token)
            REQUEST_ID.reset(token)

    def access_log(
        self, method: str, path: str, route: str, status: int, start: float, *, traced: bool
    ) -> None:
        """One line for an error, a request slower than the latency objective or a traced one
        (every request with SERVICE_ACCESS_LOG_ALL); the record is built only then."""
        t = self.telemetry
        elapsed = time.perf_counter() - start
        if traced or status >= 400 or elapsed > t.slow_seconds or t.log_every_request:
            log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={"route": route, "status": status, "duration_ms": round(elapsed * 1000, 3)},
            )

    def span_name(self, method: str, route: str) -> str:
        """`<method> <route>`, built once per pair (the route is one of the app's, or `other`)."""
        key = (method, route)
        name = self._span_names.get(key)
        if name is None:
            name = f"{method} {route}"
            if len(self._span_names) < 256:  # bounded, whatever methods clients send
                self._span_names[key] = name
        return name
