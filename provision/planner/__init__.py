"""Planning: what must change so each roster user's phones match the roster.

Pure: no I/O, no clock, no randomness. ``plan(desired, current, sms_policy, policy)``
turns the roster's desired phones and Graph's current phones into a ``Plan``: for every
roster user exactly one ``UserPlan`` (outcome ``change``/``noop``/``skip``/``error``), each
holding an ordered chain of ``Change`` values the executor applies as given. A type the
roster does not mention is never touched.

One module per rule group (each module's docstring states its rules in full):

- ``phone_rules``: which types to create/update/delete in each mode, and Graph's
  mobile/alternateMobile rule on the state the plan leaves behind;
- ``same_number``: numbers compare by digits and extension only (``+12065550100`` is
  ``+1 2065550100``);
- ``chain``: the order inside a user that never breaks a Graph rule (creates/updates
  mobile -> alternateMobile -> office, deletes office -> alternateMobile -> mobile, the SMS
  sign-in change last), each change depending on the previous one;
- ``sms_rules``: SMS sign-in enable/disable, judged against the mobile the user will have
  after the plan; idempotent;
- ``safety``: the ``max_changes``/``max_delete_percent``/``max_update_percent`` thresholds,
  the roster-size ones (``min_roster_rows``, ``min_roster_percent``) and ``check_safety``;
- ``summary``: counts, outcomes and top reasons for the CLI and the plan file;
- ``reasons``: the reason codes a user plan carries, and their sentences;
- ``values``: ``Change``, ``UserPlan``, ``PlanPolicy``, ``Plan`` and the safety verdict;
- ``plan_users``: ``plan()`` itself, the users it can't plan (not read, not found, masked),
  and the per-user composition of the rules;
- ``plan_file``: the plan as a reviewable, checksummed JSON file.
"""

from __future__ import annotations

from provision.planner.plan_file import SavedPlan, plan_checksum, read_plan, write_plan
from provision.planner.plan_users import plan
from provision.planner.reasons import ReasonCode
from provision.planner.safety import check_safety
from provision.planner.summary import PlanSummary, summarize, users_by_outcome
from provision.planner.values import Change, Plan, PlanPolicy, SafetyVerdict, Threshold, UserPlan

__all__ = [
    "Change",
    "Plan",
    "PlanPolicy",
    "PlanSummary",
    "ReasonCode",
    "SafetyVerdict",
    "SavedPlan",
    "Threshold",
    "UserPlan",
    "check_safety",
    "plan",
    "plan_checksum",
    "read_plan",
    "summarize",
    "users_by_outcome",
    "write_plan",
]
