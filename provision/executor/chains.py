"""The executor's runtime state: each user's changes as a chain, worked through in order.

A user's changes run one at a time in planned order (``UserChain.pos`` is the head);
users are independent. ``ChangeItem`` carries what the executor tracks per change while
it runs (attempts, the answer that needs a read-back, lag retries) and builds the Graph
operation and the journal record for it.
"""

from __future__ import annotations

from typing import Iterable

from provision.errors import GraphError
from provision.executor.answers import Purpose
from provision.executor.journal import ChangeResult, ChangeStatus, JournalChange
from provision.graph import ops as graph_ops
from provision.graph.batch import Op
from provision.model import ChangeKind, PhoneType

__all__ = ["ChangeItem", "UserChain", "load_chains"]

# The journal stores the enums' values; a dict maps them back faster than calling the enum.
_KINDS = {kind.value: kind for kind in ChangeKind}
_PHONE_TYPES = {phone_type.value: phone_type for phone_type in PhoneType}


class ChangeItem:
    """One change of a user's chain, with its progress in this run."""

    __slots__ = ("change", "kind", "phone_type", "user", "index", "attempts", "started", "error", "lag_retries", "reads")

    def __init__(self, change: JournalChange, user: UserChain, index: int) -> None:
        self.change = change
        self.kind = _KINDS[change.kind]
        self.phone_type = _PHONE_TYPES[change.phone_type]
        self.user = user
        self.index = index  # position in the user's chain
        self.attempts = 0  # sends in this run
        self.started: float | None = None  # first send in this run
        self.error: GraphError | None = None  # the answer being read back, if any
        self.lag_retries = 0  # alternateMobile creates refused for want of the mobile
        self.reads = 0  # re-reads of a refused write whose phone type shows nothing yet

    def write_op(self, op_id: str) -> Op:
        """The Graph operation that applies this change."""
        change = self.change
        kind = self.kind
        if kind is ChangeKind.CREATE:
            return graph_ops.create_phone(op_id, change.target, self.phone_type, change.after or "")
        if kind is ChangeKind.UPDATE:
            return graph_ops.update_phone(op_id, change.target, self.phone_type, change.after or "")
        if kind is ChangeKind.DELETE:
            return graph_ops.delete_phone(op_id, change.target, self.phone_type)
        if kind is ChangeKind.ENABLE_SMS:
            return graph_ops.enable_sms_sign_in(op_id, change.target)
        return graph_ops.disable_sms_sign_in(op_id, change.target)

    def result(self, status: ChangeStatus, error: GraphError | None, *, sms_state_after: str | None = None) -> ChangeResult:
        """The journal record of this change taking ``status``, describing ``error`` if any."""
        if error is None:
            return ChangeResult(self.change.id, status, sms_state_after=sms_state_after)
        return ChangeResult(
            self.change.id,
            status,
            http_status=error.status or None,
            code=error.code,
            message=error.message,
            request_id=error.request_id,
            sms_state_after=sms_state_after,
        )


class UserChain:
    """One user's changes in planned order, and where the run stands with them."""

    __slots__ = ("key", "target", "items", "pos", "purpose", "read_attempts", "read_started", "ended", "verify_changes")

    def __init__(self, key: str, target: str) -> None:
        self.key = key
        self.target = target
        self.items: list[ChangeItem] = []
        self.pos = 0  # the head: the first change not finished
        self.purpose: Purpose | None = None  # why its phones are being read back
        self.read_attempts = 0
        self.read_started = 0.0
        self.ended = False
        self.verify_changes: list[JournalChange] = []  # what --verify checks

    @property
    def head(self) -> ChangeItem:
        return self.items[self.pos]


def load_chains(
    planned: Iterable[tuple[JournalChange, ChangeStatus]],
) -> tuple[dict[str, UserChain], dict[str, ChangeStatus]]:
    """Every user's chain (in planned order) and every change's status, from the journal's
    ``planned()``."""
    users: dict[str, UserChain] = {}
    statuses: dict[str, ChangeStatus] = {}
    for change, status in planned:
        user = users.get(change.user)
        if user is None:
            user = users[change.user] = UserChain(change.user, change.target)
        user.items.append(ChangeItem(change, user, len(user.items)))
        statuses[change.id] = status
    return users, statuses
