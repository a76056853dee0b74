"""Graph JSON batching ($batch): envelope validation and dependency-ordered execution.

The items themselves are executed by a callable the HTTP layer provides (the very code
that serves direct requests); this module only knows the envelope's rules:

- at most 20 requests, each with a unique ``id`` (case-insensitive), a ``method`` and a
  relative ``url``; otherwise the whole batch is rejected (400);
- ``dependsOn``: a single id (a list of one, or a string); more than one, or an item that
  comes later in the batch, is a 400 for the whole batch (Graph's known issue: "requests
  can only depend on a single other request"; "Invalid dependency" for a later one).
  An item runs after the item it names; if that one failed (non-2xx) or is not in the
  batch at all, the item is answered 424 Failed Dependency without running. (msgraph-core's
  ``depends_on`` spelling is ignored, as Graph ignores it.)
- order: in request order, or (given a random source: the profile's ``batch_order =
  "shuffled"``) in a random order that still runs dependants after their dependency, with
  the answers in another random order (Graph: "might appear in a different order").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, TypeVar

MAX_BATCH_REQUESTS = 20  # evidence: G46 (documented; a larger batch is refused whole)
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})

R = TypeVar("R")


class BatchError(Exception):
    """The batch envelope is invalid: the whole batch is answered 400."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    id: str
    method: str  # upper case
    url: str  # relative, as sent
    headers: Mapping[str, str]  # names lower-cased
    body: Any
    depends_on: tuple[str, ...]

    @property
    def path(self) -> str:
        """The url's path (query dropped), always starting with '/'."""
        path = self.url.split("?", 1)[0]
        return path if path.startswith("/") else "/" + path


def parse_batch(payload: Any) -> list[BatchItem]:
    """Validate a decoded $batch body; raises BatchError naming the problem."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise BatchError("Invalid batch payload: a 'requests' array is required.")
    requests = payload["requests"]
    if len(requests) > MAX_BATCH_REQUESTS:
        raise BatchError(f"Invalid batch payload: the number of requests exceeds the limit of {MAX_BATCH_REQUESTS}.")
    items: list[BatchItem] = []
    seen: set[str] = set()
    ids: list[str] = []  # in request order, case-folded
    for raw in requests:
        if not isinstance(raw, dict):
            raise BatchError("Invalid batch payload: each request must be an object.")
        item_id = raw.get("id")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if not isinstance(item_id, str) or not item_id:
            raise BatchError("Invalid batch payload: each request needs an 'id'.")
        folded = item_id.casefold()
        if folded in seen:  # evidence: G47 (ids unique, case-insensitive, else 400: documented)
            raise BatchError(f"Invalid batch payload: duplicate request id '{item_id}'.")
        seen.add(folded)
        method = raw.get("method")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise BatchError(f"Invalid batch payload: request '{item_id}' has an invalid method.")
        url = raw.get("url")
        if not isinstance(url, str) or not url:
            raise BatchError(f"Invalid batch payload: request '{item_id}' needs a 'url'.")
        if "://" in url.split("?", 1)[0]:
            raise BatchError(f"Invalid batch payload: request '{item_id}' must use a relative url.")
        # evidence: G51 (a body without Content-Type: Graph's answer is unpublished, so it isn't checked)
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict):
            raise BatchError(f"Invalid batch payload: request '{item_id}' has invalid headers.")
        # evidence: G52 (msgraph-core's "depends_on" spelling is ignored, as Graph ignores it)
        depends = raw.get("dependsOn") or []
        if isinstance(depends, str):
            depends = [depends]
        if not isinstance(depends, list) or not all(isinstance(d, (str, int)) for d in depends):
            raise BatchError(f"Invalid batch payload: request '{item_id}' has an invalid dependsOn.")
        if len(depends) > 1:
            # evidence: G50 (the $batch known issue: a request can depend on a single other request only)
            raise BatchError(
                f"Invalid batch payload: request '{item_id}' depends on more than one request; "
                "a request can depend on a single other request only."
            )
        ids.append(folded)
        items.append(
            BatchItem(
                id=item_id,
                method=method.upper(),
                url=url,
                headers={str(k).lower(): str(v) for k, v in headers.items()},
                body=raw.get("body"),
                depends_on=tuple(str(d) for d in depends),
            )
        )
    _check_dependencies_come_first(items, ids)
    return items


def _check_dependencies_come_first(items: list[BatchItem], ids: list[str]) -> None:
    """A dependency on an item later in the batch is refused whole (our choice for one that
    names no item at all: 424 for the dependant, as for a failed one)."""
    # evidence: G50 (mixed patterns are not refused: our choice)
    position = {item_id: index for index, item_id in enumerate(ids)}
    for index, item in enumerate(items):
        for dep in item.depends_on:
            later = position.get(dep.casefold(), -1) >= index
            if later:
                # evidence: G50 (field reports quote "Invalid dependency" for a dependency later in the batch)
                raise BatchError(f"Invalid dependency for request Id '{item.id}': '{dep}' is not an earlier request.")


@dataclass(frozen=True, slots=True)
class ItemOutcome(Generic[R]):
    item: BatchItem
    result: R


def run_batch(
    items: list[BatchItem],
    execute: Callable[[BatchItem], R],
    failed_dependency: Callable[[BatchItem], R],
    status_of: Callable[[R], int],
    rng: random.Random | None = None,
) -> list[ItemOutcome[R]]:
    """Run items so that each runs after its dependencies; answers come back in request order.

    Independent items run in request order. An item whose dependency failed, is missing,
    or can never run (a cycle) gets ``failed_dependency(item)`` and never executes.
    With ``rng``: each round of runnable items runs in a random order, and the answers
    come back in another random order.
    """
    # evidence: G48, G49, G50 (request order by default; 424 for a failed or missing dependency)
    by_id = {item.id.casefold(): item for item in items}
    results: dict[str, R] = {}
    ok: dict[str, bool] = {}
    pending = list(items)
    while pending:
        if rng is not None:
            rng.shuffle(pending)
        progressed = False
        waiting: list[BatchItem] = []
        for item in pending:
            deps = [d.casefold() for d in item.depends_on]
            if any(d not in by_id or (d in ok and not ok[d]) for d in deps):
                result = failed_dependency(item)
            elif all(d in ok for d in deps):
                result = execute(item)
            else:
                waiting.append(item)
                continue
            key = item.id.casefold()
            results[key] = result
            status = status_of(result)
            ok[key] = 200 <= status < 300
            progressed = True
        if not progressed:
            for item in waiting:
                key = item.id.casefold()
                results[key] = failed_dependency(item)
                ok[key] = False
            break
        pending = waiting
    outcomes = [ItemOutcome(item, results[item.id.casefold()]) for item in items]
    if rng is not None:
        rng.shuffle(outcomes)
    return outcomes


__all__ = ["MAX_BATCH_REQUESTS", "BatchError", "BatchItem", "ItemOutcome", "parse_batch", "run_batch"]
