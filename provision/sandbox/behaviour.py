"""The profile's ``[behaviour]`` variants that change answers after the service gave them.

Where public evidence about Graph is absent or contradictory, the profile picks one
plausible behaviour (docs/sandbox.md lists every value). The variants applied here:

- ``error_text = "opaque"``: a rule-violation answer (400/403/404/409 from the service: the
  tenant's rules, a body it can't read, a permission refusal) keeps its status, but its
  code and message are replaced by ones no client knows, so a client can judge only by the
  status and a read-back;
- ``list_order = "shuffled"``: the phone methods of a list come back in a random order;
- ``batch_order = "shuffled"``: ``batch_rng`` hands ``batch.run_batch`` the random source
  that orders a ``$batch``'s execution and its answers.

``number_format`` is the tenant's (a rule about what is stored, ``tenant.py``);
``retry_after`` is written by ``gateway.throttled_reply`` (``limits.Throttled``). Every
random choice comes from the sandbox's one seeded random source.
"""

from __future__ import annotations

import random

from provision.sandbox.limits import (
    BatchOrder,
    BehaviourSettings,
    ErrorText,
    ListOrder,
)
from provision.sandbox.service import Reply

# Codes Graph might plausibly send and the client has never been taught: judged only by status.
# evidence: G55, G07 (messages "can change at any time"; rule-refusal codes are unpublished)
OPAQUE_CODES: tuple[str, ...] = ("serviceRejectedRequest", "operationNotCompleted", "requestNotProcessed")
OPAQUE_MESSAGE = "The request could not be completed."
# Statuses a rule violation answers with; throttling, 424 and 5xx keep their own codes.
_RULE_STATUSES = frozenset({400, 403, 404, 409})
_LISTS = frozenset({"listPhoneMethods"})


class Behaviour:
    """One profile's behaviour variants, drawing from the sandbox's random source."""

    def __init__(self, settings: BehaviourSettings, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        # The gateway skips ``present`` entirely when nothing would change (the hot path).
        self.changes_answers = settings.rewords_answers

    @property
    def batch_rng(self) -> random.Random | None:
        """The random source ordering ``$batch`` items, or None for request order."""
        return self._rng if self.settings.batch_order is BatchOrder.SHUFFLED else None

    def present(self, operation: str, reply: Reply) -> Reply:
        """The answer as this profile's Graph words it (``operation``: the stats name)."""
        s = self.settings
        if reply.error is not None:
            if s.error_text is ErrorText.OPAQUE and reply.status in _RULE_STATUSES:
                reply.error = (self._rng.choice(OPAQUE_CODES), OPAQUE_MESSAGE)
            return reply
        if s.list_order is ListOrder.SHUFFLED and operation in _LISTS and isinstance(reply.body, dict):
            items = list(reply.body.get("value", ()))
            self._rng.shuffle(items)
            reply.body = {**reply.body, "value": items}
        return reply


__all__ = ["OPAQUE_CODES", "OPAQUE_MESSAGE", "Behaviour"]
