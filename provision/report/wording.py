"""Plain-language words for the reports: what exit codes and outcomes mean, how a run
ended, and for each known failure reason, what happened and what an admin can do about it.

Reason codes are ours (the roster reader's and the planner's ``ReasonCode``) or Graph's
error codes; lookup ignores case. An unknown code gets a generic hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provision.model import ChangeKind, RowOutcome
from provision.report.values import RunState, RunSummary

__all__ = [
    "CHANGE_KIND_LABELS",
    "OUTCOME_WORDS",
    "Remedy",
    "ending_sentence",
    "known_codes",
    "ordered_kinds",
    "remedy_for",
]

OUTCOME_WORDS: Mapping[RowOutcome, str] = {
    RowOutcome.APPLIED: "changed as the roster asked",
    RowOutcome.UNCHANGED: "already right, nothing to do",
    RowOutcome.PARTIAL: "some changes worked, some failed",
    RowOutcome.FAILED: "Microsoft Graph refused the change",
    RowOutcome.SKIPPED: "deliberately left alone",
    RowOutcome.INVALID: "the roster row has errors",
    RowOutcome.PLANNED: "planned, not written (yet)",
}

CHANGE_KIND_LABELS: Mapping[str, str] = {
    ChangeKind.CREATE.value: "phones added",
    ChangeKind.UPDATE.value: "phones changed",
    ChangeKind.DELETE.value: "phones removed",
    ChangeKind.ENABLE_SMS.value: "SMS sign-in turned on",
    ChangeKind.DISABLE_SMS.value: "SMS sign-in turned off",
}


# Why a run stopped early (RunSummary.stop_reason), as the reports' sentence starts.
_STOPPED_BY: Mapping[str, str] = {
    "interrupted": "interrupted",
    "unreachable": "stopped: Microsoft Graph (or its sign-in endpoint) could not be reached",
    "aborted": "stopped: authentication or permission failure (fix the credential or its permissions first)",
    "crashed": "stopped: an unexpected error (run.log has the details)",
}


def ending_sentence(summary: RunSummary) -> str | None:
    """How an unfinished run ended and how to finish it; None when there is nothing to finish.

    Rows the run never reached are counted as such (outcome ``planned``), never as done.
    """
    if summary.status is RunState.COMPLETED and not summary.resume_command:
        return None
    rows = summary.rows_not_reached
    plural = "" if rows == 1 else "s"
    resume = f"resume with {summary.resume_command}" if summary.resume_command else "nothing left to resume"
    if summary.status is RunState.COMPLETED:
        return f"finished, but {rows:,} row{plural} not confirmed (a change could not be read back): {resume}"
    # After a refusal the rows left were sent and refused, not "not reached".
    not_reached = f"{rows:,} row{plural} {'not done' if summary.stop_reason == 'aborted' else 'not reached'}"
    start = _STOPPED_BY.get(summary.stop_reason, f"stopped ({summary.stop_reason or 'reason unknown'})")
    return f"{start}: {not_reached}, {resume}"


def ordered_kinds(*counts: Mapping[str, int]) -> list[str]:
    """Change kinds present in any of ``counts``: known kinds in apply order, then the rest."""
    seen: set[str] = set()
    for c in counts:
        seen.update(c)
    known = [k for k in CHANGE_KIND_LABELS if k in seen]
    return known + sorted(seen - set(known))


@dataclass(frozen=True, slots=True)
class Remedy:
    title: str  # what happened, in a few words
    meaning: str  # why, in a sentence or two
    action: str  # what to do about it
    known: bool = True
    command: str | None = None  # a command an admin can paste, shown verbatim


# Microsoft Graph PowerShell: who has this number as their SMS sign-in number.
_FIND_SMS_OWNER = (
    "Get-MgUser -All -Property Id,UserPrincipalName | ForEach-Object { $u = $_\n"
    "  Get-MgUserAuthenticationPhoneMethod -UserId $u.Id |\n"
    "    Where-Object { $_.SmsSignInState -eq 'ready' -and $_.PhoneNumber -eq '<number from results.xlsx>' } |\n"
    "    ForEach-Object { $u.UserPrincipalName } }"
)

_REMEDIES: Mapping[str, Remedy] = {
    "phoneNumberNotUnique": Remedy(
        "Number already used for SMS sign-in by someone else",
        "Each number can be the SMS sign-in number of only one user in the tenant. The phone is usually "
        "still saved for multifactor authentication, but SMS sign-in was not turned on for this user.",
        "Check the number in results.xlsx. If it belongs to this user, turn SMS sign-in off for the other "
        "user (or fix their number) and run the job again; if it is a shared or wrong number, correct the "
        "roster. To find who holds the number, run this in Microsoft Graph PowerShell:",
        command=_FIND_SMS_OWNER,
    ),
    "user_not_found": Remedy(
        "User not found",
        "Microsoft Entra has no user with this name or id.",
        "Check the spelling of the user principal name in the roster (typos, old domain, a renamed "
        "account), or whether the account is not created yet. Fix the roster and run the job again.",
    ),
    "out_of_scope": Remedy(
        "Outside the job's scope",
        "The user is outside the job's [scope]: not a member (directly or through nested groups) of its "
        "groups, nor a member of its administrative units. Nothing was read or written for them.",
        "Add the user to the group or widen the scope (the [scope] groups and admin_units in the job "
        "file), or take the row out of the roster; then run the job again.",
    ),
    "Request_ResourceNotFound": Remedy(
        "User or phone method not found",
        "Microsoft Graph answered 404: the user (or the phone being changed) does not exist.",
        "Check the user in the roster exists in Entra. If a phone was removed by someone else during the "
        "run, run the job again: it will plan from the current state.",
    ),
    "itemNotFound": Remedy(
        "User or phone method not found",
        "Microsoft Graph answered 404: the user (or the phone being changed) does not exist.",
        "Check the user in the roster exists in Entra, then run the job again.",
    ),
    "numbers_masked": Remedy(
        "Phone numbers came back masked",
        "The app can only read masked numbers (like +1 XXXXXXXX00), which happens when it runs with the "
        "Authentication Administrator role. The job never compares against or removes a masked number, "
        "so these users were left alone.",
        "Give the app the application permission UserAuthenticationMethod.ReadWrite.All (admin consent), "
        "or run it as a Privileged Authentication Administrator, then run the job again.",
    ),
    "sms_not_allowed_by_policy": Remedy(
        "SMS sign-in not allowed for this user",
        "The tenant's SMS authentication method policy does not let this user sign in with SMS, so SMS "
        "sign-in was not changed. The phone numbers themselves were still handled.",
        "In the Entra admin center, Protection > Authentication methods > SMS: enable the method, add the "
        "user (or a group they are in) and tick 'Use for sign-in'. The user also needs a license that "
        "includes SMS sign-in. Then run the job again.",
    ),
    "sms_needs_mobile": Remedy(
        "SMS sign-in needs a mobile number",
        "SMS sign-in was asked for, but the user will have no mobile phone.",
        "Add a mobile number for the user in the roster, or don't ask for SMS sign-in for them.",
    ),
    "sms_mobile_has_extension": Remedy(
        "Mobile number has an extension",
        "SMS messages can't be sent to a number with an extension, so SMS sign-in can't use it.",
        "Give the user a mobile number without an extension in the roster.",
    ),
    "invalid_number": Remedy(
        "Phone number not usable",
        "The roster cell could not be read as a valid phone number (not a number, wrong length for the "
        "country, or an extension on a mobile).",
        "Correct the cell in the roster: write the number with its country code (+44 20 7946 0958) or set "
        "the row's country column. The problem column and reason are in results.xlsx.",
    ),
    "duplicate_user_conflict": Remedy(
        "Same user on several rows with different numbers",
        "The roster lists this user more than once with numbers that disagree, so the job can't tell "
        "which is right and changed none of them.",
        "Keep one row per user in the roster (or make the rows identical) and run the job again.",
    ),
    "conflict": Remedy(
        "Changed since the run being rolled back",
        "A rollback only restores a phone that still holds what the reversed run wrote; this one was "
        "changed afterwards (by the user, another admin or a later run), so it was left as it is.",
        "Check the user's current phones in Entra; if the reversed value is still wanted, put it in a "
        "roster and run the job, or change the phone by hand.",
    ),
    "alternate_requires_mobile": Remedy(
        "Alternate mobile without a mobile",
        "Microsoft Entra needs a mobile number before an alternate mobile can be added; the user has "
        "none and the roster gives none.",
        "Add a mobile number for the user in the roster (or move the number to the mobile column).",
    ),
    "mobile_delete_blocked_by_alternate": Remedy(
        "Mobile can't be removed while an alternate mobile exists",
        "The roster blanks the mobile but keeps the alternate mobile, which Microsoft Entra does not allow.",
        "Blank the alternate mobile as well, or give the user a new mobile number, in the roster.",
    ),
    "read_failed": Remedy(
        "Could not read the user's phones",
        "Reading the user's current phone methods failed, so nothing was planned for them.",
        "Look at the error message in results.xlsx; usually running the job again is enough.",
    ),
    "not_read": Remedy(
        "User's phones not read",
        "The run stopped before this user's current phones were read.",
        "Run the job again (or resume the run) to finish.",
    ),
    "Authorization_RequestDenied": Remedy(
        "Permission denied",
        "The app is not allowed to change phone methods for this user (missing permission, or the user "
        "is an administrator that the app's role can't manage).",
        "Grant the application permission UserAuthenticationMethod.ReadWrite.All with admin consent. For "
        "administrator accounts, a Privileged Authentication Administrator must make the change.",
    ),
    "accessDenied": Remedy(
        "Permission denied",
        "The app is not allowed to make this change.",
        "Grant the application permission UserAuthenticationMethod.ReadWrite.All with admin consent.",
    ),
    "TooManyRequests": Remedy(
        "Microsoft Graph asked us to slow down (throttled)",
        "Graph limits how many requests an app may send. The job waits and retries by itself; these rows "
        "still failed after every retry.",
        "Run the job again later, ideally outside working hours; only the remaining rows will be sent. "
        "Other apps using the same tenant share the limit.",
    ),
    "badRequest": Remedy(
        "Microsoft Graph rejected the request",
        "Graph said the request was not valid, most often because of the phone number's format or a rule "
        "about phone types (one of each type; a mobile before an alternate mobile).",
        "Check the number and the error message in results.xlsx, correct the roster and run the job again.",
    ),
    "invalidRequest": Remedy(
        "Microsoft Graph rejected the request",
        "Graph said the request was not valid, most often because of the phone number's format.",
        "Check the number and the error message in results.xlsx, correct the roster and run the job again.",
    ),
    "serviceNotAvailable": Remedy(
        "Microsoft Graph was unavailable",
        "Graph answered that the service was temporarily unavailable, even after retries.",
        "Run the job again later; rows that were already done will be left alone.",
    ),
    "generalException": Remedy(
        "Microsoft Graph had an internal error",
        "Graph failed on its side, even after retries.",
        "Run the job again later. If it keeps happening, open a Microsoft support case with the request "
        "ids from results.xlsx.",
    ),
    "transportError": Remedy(
        "Network problem",
        "No answer came back from Microsoft Graph (connection failed or timed out).",
        "Check the network and proxy of the machine running the job, then resume or run the job again; "
        "the job reads back anything whose outcome was unknown.",
    ),
    "credentialUnavailable": Remedy(
        "Could not sign in",
        "The job could not get a token for Microsoft Graph with its configured credential.",
        "Check the tenant id, client id and the secret or certificate (environment variable or file).",
    ),
}

_FIX_CELL = "Correct the cell in the roster (results.xlsx names the row and the column), then run the job again."

# The roster reader's codes (roster.numbers and roster.reader): the row itself is wrong, so
# each says what to change in the sheet. Kept apart from Graph's codes above.
_ROSTER_REMEDIES: Mapping[str, Remedy] = {
    "not_a_number": Remedy(
        "Phone cell is not a phone number",
        "The cell holds text that isn't a phone number (a name, a note, \"n/a\", a date).",
        "Put the number in the cell, or leave it blank. " + _FIX_CELL,
    ),
    "scientific_notation": Remedy(
        "Excel turned the number into scientific notation",
        "The cell shows a long number as Excel displays it (like 4.47911E+11): its last digits are lost.",
        "Format the column as Text in Excel and type the numbers again (with their + and country code), "
        "or export the HR system's file again as text. " + _FIX_CELL,
    ),
    "no_region": Remedy(
        "Number without a country",
        "The number has no +country code, and neither the row's country column nor the job's "
        "default_region says which country it belongs to.",
        "Write the number with its country code (+44 20 7946 0958), fill the row's country column, or set "
        "default_region in the job's [roster] table. Then run the job again.",
    ),
    "invalid_country_code": Remedy(
        "Unknown country code",
        "The number starts with a + and a country code that no country uses.",
        "Check the digits after the + (a typo, or a national number written with a +). " + _FIX_CELL,
    ),
    "too_short": Remedy(
        "Phone number too short",
        "The number has too few digits for its country: digits are missing, or it is an internal "
        "extension written alone.",
        "Write the full number with its country code; an internal extension goes after the office "
        "number (+1 425 555 0100 x123). " + _FIX_CELL,
    ),
    "too_long": Remedy(
        "Phone number too long",
        "The number has too many digits for its country: two numbers in one cell, or extra digits.",
        "Keep one number per cell, with its country code. " + _FIX_CELL,
    ),
    "invalid_for_region": Remedy(
        "Number doesn't exist in that country",
        "The number has a plausible length but no such number exists in the country it was read for "
        "(often a number from another country written without its +country code).",
        "Write the number with its own country code, or fix the row's country column. " + _FIX_CELL,
    ),
    "extension_not_allowed": Remedy(
        "Mobile number with an extension",
        "A mobile or alternate mobile can't have an extension: SMS and calls to a mobile can't dial one.",
        "Remove the extension from the mobile cell, or move the number to the office phone column if it is "
        "a desk phone. " + _FIX_CELL,
    ),
    "extension_too_long": Remedy(
        "Extension too long",
        "The extension after the number has more digits than a phone system accepts.",
        "Check the extension (a second number typed after the first?). " + _FIX_CELL,
    ),
    "fixed_line_in_mobile_slot": Remedy(
        "Landline in a mobile column",
        "The number is a fixed line, not a mobile, so it can't receive SMS. It was still registered.",
        "If it is the user's desk phone, move it to the office phone column; otherwise put their mobile "
        "number in the roster.",
    ),
    "non_mobile_in_mobile_slot": Remedy(
        "Number that can't receive SMS in a mobile column",
        "The number is not a mobile (a toll-free, premium or VoIP number, for example), so it can't "
        "receive SMS. It was still registered.",
        "Put the user's mobile number in the roster, or move this one to the office phone column.",
    ),
    "ambiguous_lost_plus": Remedy(
        "Number that lost its + in the spreadsheet",
        "The cell is a spreadsheet number (its + was dropped) that reads both as a national number and as "
        "an international one; the national reading was kept.",
        "Type the number as text, with its + and country code, so there is only one reading.",
    ),
    "missing_user": Remedy(
        "Row without a user",
        "The row has no user principal name or object id, so it can't be matched to anyone.",
        "Fill the user column (name@domain or the Entra object id), or delete the row. Then run the job "
        "again.",
    ),
    "invalid_user": Remedy(
        "User cell is not a user name",
        "The user cell is neither a user principal name (name@domain) nor an Entra object id (a GUID).",
        "Write the user's sign-in name (name@contoso.com) or object id in the user column; check the job "
        "reads the right column ([roster.columns] user = ...). Then run the job again.",
    ),
    "invalid_region": Remedy(
        "Country column not understood",
        "The row's country cell is not a country the job knows (it expects an ISO code such as US, GB, DE "
        "or a country name); the job's default_region was used instead.",
        "Write the two-letter ISO country code in the country column.",
    ),
    "invalid_sms_sign_in": Remedy(
        "SMS sign-in cell not understood",
        "The row's sms_sign_in cell is not yes, no or blank.",
        "Write yes, no, or leave the cell blank (the job's sms_sign_in setting then applies). " + _FIX_CELL,
    ),
    "alternate_without_mobile": Remedy(
        "Alternate mobile without a mobile",
        "The row gives an alternate mobile but no mobile; Microsoft Entra adds an alternate mobile only to "
        "a user who already has a mobile.",
        "Add the user's mobile number to the row (or move the number to the mobile column).",
    ),
    "sms_sign_in_without_mobile": Remedy(
        "SMS sign-in asked without a mobile",
        "The row asks for SMS sign-in but gives no mobile number; SMS sign-in works only on a mobile.",
        "Add the user's mobile number to the row, or set the row's sms_sign_in to no.",
    ),
    "duplicate_mobile": Remedy(
        "One mobile number for several users",
        "The same mobile number is on several users' rows. Each can have it for multifactor "
        "authentication, but only one of them can use it for SMS sign-in.",
        "Check the rows that share the number: a shared team phone should not be a mobile for SMS "
        "sign-in; a copy-paste mistake should be corrected in the roster.",
    ),
    "sms_number_not_unique": Remedy(
        "Number already used for SMS sign-in by someone else",
        "SMS sign-in was asked for, but another user already signs in by SMS with this number, so it was "
        "not tried again.",
        "Free or correct the number (see results.xlsx), then set sms_retry_conflicts = true in the job for "
        "one run.",
    ),
    "formula_without_value": Remedy(
        "Formula never calculated",
        "The cell is a formula that the workbook never calculated (it was written by a program, not saved "
        "in Excel), so it has no value to read.",
        "Open the workbook in Excel and save it (or export the values as CSV), then run the job again.",
    ),
    "extra_cells": Remedy(
        "More cells than the header has columns",
        "The row has values beyond the last header column, usually an unquoted comma or tab inside a value "
        "that split it in two.",
        "Quote values that contain the delimiter (or export the file again from the HR system), then run "
        "the job again.",
    ),
}

_REMEDIES_BY_FOLDED: Mapping[str, Remedy] = {
    k.casefold(): v for k, v in {**_ROSTER_REMEDIES, **_REMEDIES}.items()
}

_UNKNOWN = Remedy(
    "Other problem",
    "This reason is not one the report knows how to explain.",
    "Read the error message and request id in results.xlsx. Running the job again often helps with "
    "temporary errors; otherwise search the error code in the Microsoft Graph documentation.",
    known=False,
)

_NO_CODE = Remedy(
    "No reason recorded",
    "These rows did not succeed, but no error code was recorded for them.",
    "Look at the reason column in results.xlsx.",
    known=False,
)


def remedy_for(code: str | None) -> Remedy:
    if not code:
        return _NO_CODE
    return _REMEDIES_BY_FOLDED.get(code.casefold(), _UNKNOWN)


def known_codes() -> Iterable[str]:
    return [*_REMEDIES, *_ROSTER_REMEDIES]
