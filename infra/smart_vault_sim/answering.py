"""The shape of an emulated API that moto lacks: botocore handlers that remember each request's
parameters (``before-parameter-build``) and answer it (``before-call`` returns the parsed
response, as the service would), on one session or on every session created meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.handlers import BUILTIN_HANDLERS

Handlers = list[tuple[str, Callable[..., Any]]]


class Response:
    """What botocore needs of an HTTP response that a before-call handler answers with."""

    status_code = 200
    headers: dict[str, str] = {}
    content = b""


class AnsweredApi:
    """Subclasses list their handlers in ``handlers``; ``params(context)`` is the request's."""

    PARAMS_KEY = "smart_vault_sim.answered_params"

    def handlers(self) -> Handlers:
        raise NotImplementedError

    def install(self, events: Any) -> Any:
        """On one session's events (its clients created from now on)."""
        for event, handler in self.handlers():
            events.register(event, handler)
        return self

    @contextmanager
    def everywhere(self) -> Iterator[Any]:
        """On every botocore session created meanwhile (the operator CLI makes its own)."""
        added = self.handlers()
        BUILTIN_HANDLERS.extend(added)
        try:
            yield self
        finally:
            for entry in added:
                BUILTIN_HANDLERS.remove(entry)

    def remember(self, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        if context is not None:
            context[self.PARAMS_KEY] = dict(params)

    def params(self, context: Any) -> dict[str, Any]:
        return dict((context or {}).get(self.PARAMS_KEY) or {})
