"""Match request paths against API Gateway resource paths (``{name}``, ``{proxy+}``).

API Gateway picks the most specific resource: literal segments before ``{name}`` before a
greedy ``{name+}``, and a route's own method before ``ANY``. The table sorts routes that way
once, so matching is a walk down a short list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from maaskit.local.template import Route

_LITERAL, _PARAMETER, _GREEDY = 0, 1, 2
_RECENT_PATHS = 1024
_UNSEEN = object()


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    return [segment for segment in path.strip("/").split("/") if segment]


def _kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return _GREEDY
    if segment.startswith("{") and segment.endswith("}"):
        return _PARAMETER
    return _LITERAL


def _specificity(route: Route) -> tuple[tuple[int, ...], int, int]:
    kinds = tuple(_kind(segment) for segment in _segments(route.path))
    # More segments first among equals; a named method before ANY.
    return kinds, -len(kinds), 1 if route.method == "ANY" else 0


def _match_path(template: list[str], actual: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, segment in enumerate(template):
        kind = _kind(segment)
        if kind == _GREEDY:
            rest = actual[index:]
            if not rest:
                return None
            parameters[segment[1:-2]] = unquote("/".join(rest))
            return parameters
        if index >= len(actual):
            return None
        if kind == _PARAMETER:
            parameters[segment[1:-1]] = unquote(actual[index])
        elif segment != actual[index]:
            return None
    return parameters if len(actual) == len(template) else None


class RouteTable:
    """The routes of one API, most specific first."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=_specificity)
        self._split = [(route, _segments(route.path)) for route in self.routes]
        self._recent: dict[tuple[str, str], RouteMatch | None] = {}

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route serving ``method`` on ``path`` (raw, still percent-encoded), if any."""
        key = (method, path)
        found = self._recent.get(key, _UNSEEN)  # a client repeats its paths: match each once
        if found is not _UNSEEN:
            return found  # type: ignore[return-value]
        found = self._match(method, path)
        if len(self._recent) >= _RECENT_PATHS:
            self._recent.clear()
        self._recent[key] = found
        return found

    def _match(self, method: str, path: str) -> RouteMatch | None:
        actual = _segments(path)
        method = method.upper()
        for route, template in self._split:
            if route.method not in (method, "ANY"):
                continue
            parameters = _match_path(template, actual)
            if parameters is not None:
                return RouteMatch(route=route, path_parameters=parameters)
        return None

    def __len__(self) -> int:
        return len(self.routes)
