"""report.html: one self-contained page a non-engineer can read and forward.

Everything is inline (CSS, a few lines of JavaScript, SVG charts drawn in Python); a
Content-Security-Policy forbids the page from loading anything at all. Phone numbers are
masked on this page, because it is the report people forward; the full numbers stay in
results.xlsx/results.csv next to it. Free text from the roster or Graph is escaped and
has anything phone-shaped masked too. The per-row table is capped (``row_cap``) so a
100,000-row run still gives a page a browser opens quickly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import IO, TextIO

from provision.errors import ExitCode, exit_meaning
from provision.masking import mask_in_text
from provision.model import PHONE_CHANGE_KINDS, PHONE_TYPES, SMS_CHANGE_KINDS, PhoneType, RowOutcome
from provision.report.charts import Series, TimeSeries, rates, stacked_bars, time_chart
from provision.report.layout import OUTCOME_COLOURS, mask_phone
from provision.report.row_results import row_is_ok
from provision.report.sinks import text_sink
from provision.report.values import Action, RowResult, RunState, RunSummary, ThroughputSample
from provision.report.wording import (
    CHANGE_KIND_LABELS,
    OUTCOME_WORDS,
    ending_sentence,
    ordered_kinds,
    remedy_for,
)

__all__ = ["DEFAULT_ROW_CAP", "FILTER_JS", "PAGE_CSP", "PAGE_CSS", "render_html", "when", "write_html"]

DEFAULT_ROW_CAP = 500
_EXAMPLES_PER_REASON = 5
_ATTENTION = (RowOutcome.FAILED, RowOutcome.PARTIAL, RowOutcome.INVALID, RowOutcome.SKIPPED)

# Chart colours: the xlsx fills are pale, a chart wants stronger tones of the same hues.
_CHART_COLOURS: Mapping[RowOutcome, str] = {
    RowOutcome.APPLIED: "#22a06b",
    RowOutcome.UNCHANGED: "#b6bcc6",
    RowOutcome.PARTIAL: "#f5b400",
    RowOutcome.FAILED: "#e5484d",
    RowOutcome.SKIPPED: "#5b9bd5",
    RowOutcome.INVALID: "#8b0000",
    RowOutcome.PLANNED: "#8e7cc3",
}
_PHONE_LABELS: Mapping[PhoneType, str] = {
    PhoneType.MOBILE: "Mobile",
    PhoneType.ALTERNATE_MOBILE: "Alternate mobile",
    PhoneType.OFFICE: "Office",
}
_ACTION_LABELS: Mapping[Action, str] = {
    Action.CREATE: "add",
    Action.UPDATE: "change",
    Action.DELETE: "remove",
    Action.NONE: "no change",
}

PAGE_CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f8fafc; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif; }
main { max-width:1180px; margin:0 auto; padding:28px 24px 60px; }
h1 { font-size:28px; margin:0 0 4px; }
h2 { font-size:20px; margin:36px 0 10px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:16px; margin:0 0 6px; }
.sub { color:var(--muted); margin:0 0 18px; }
.verdict { border-radius:10px; padding:16px 20px; margin:0 0 18px; font-size:18px; border-left:8px solid; }
.verdict strong { display:block; font-size:22px; margin-bottom:2px; }
.v-ok { background:#e8f7ef; border-color:#22a06b; }
.v-warn { background:#fff7e0; border-color:#f5b400; }
.v-bad { background:#fde8e8; border-color:#e5484d; }
.v-info { background:#eef2ff; border-color:#6366f1; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(165px,1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .n { font-size:26px; font-weight:700; }
.card .l { color:var(--muted); font-size:13px; }
.panel { background:#fff; border:1px solid var(--line); border-radius:10px; padding:16px; margin:12px 0; }
table { border-collapse:collapse; width:100%; background:#fff; font-size:14px; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f1f5f9; font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.pill { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:600;
  border:1px solid rgba(0,0,0,.08); white-space:nowrap; }
.reason { border-left:6px solid #e5484d; }
.reason.warn { border-left-color:#f5b400; }
.reason.info { border-left-color:#5b9bd5; }
.reason .count { float:right; font-size:22px; font-weight:700; }
.reason dt { font-weight:600; margin-top:8px; }
.reason dd { margin:2px 0 0; }
pre { background:#0f172a; color:#e2e8f0; padding:10px 12px; border-radius:8px; overflow-x:auto;
  font-size:12.5px; margin:8px 0 0; }
h3.sp { margin-top:18px; }
.nb { white-space:nowrap; }
#attention td:last-child { min-width:230px; }
#attention td:nth-last-child(2) { min-width:150px; overflow-wrap:anywhere; }
.rid { font-size:12px; word-break:break-all; }
code { background:#f1f5f9; padding:1px 5px; border-radius:4px; font-size:13px; word-break:break-word; }
.muted { color:var(--muted); }
.note { background:#fffbe6; border:1px solid #f5e3a3; border-radius:8px; padding:10px 14px; }
.tablewrap { overflow-x:auto; }
#filter { padding:6px 10px; width:320px; max-width:100%; border:1px solid #cbd5e1; border-radius:6px;
  margin:6px 0 10px; font:inherit; }
footer { margin-top:40px; color:var(--muted); font-size:13px; }
@media print { #filter { display:none; } body { background:#fff; } }
"""

# The only script: marks the page as rendered (the Chromium test reads the marker) and
# filters the attention table as the reader types.
FILTER_JS = """
(function () {
  var input = document.getElementById("filter");
  var table = document.getElementById("attention");
  if (input && table) {
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      var rows = table.tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        rows[i].style.display = rows[i].textContent.toLowerCase().indexOf(q) === -1 ? "none" : "";
      }
    });
  }
  document.body.setAttribute("data-rendered", "yes");
})();
"""

# default-src 'none': the page may not fetch anything (fonts, images, scripts, beacons).
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    """Escape for HTML, masking anything phone-shaped (free text from rosters and Graph)."""
    return escape(mask_in_text(str(value)))


def _n(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _pill(outcome: RowOutcome) -> str:
    bg = OUTCOME_COLOURS.get(outcome)
    fg = "#ffffff" if outcome is RowOutcome.INVALID else "#111827"
    style = f"background:#{bg};color:{fg}" if bg else "background:#fff"
    return f'<span class="pill" style="{style}">{escape(outcome.value)}</span>'


def _duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m} min"
    if m:
        return f"{m} min {sec} s"
    return f"{seconds:.1f} s" if seconds < 10 else f"{sec} s"


def when(iso: str) -> str:
    """``2026-11-23T12:00:00Z`` -> ``2026-11-23 12:00:00 UTC`` (anything else as given)."""
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _outcome_counts(rows: Iterable[RowResult]) -> Counter[RowOutcome]:
    return Counter(r.outcome for r in rows)


def _needs_attention(r: RowResult) -> bool:
    return r.outcome in _ATTENTION and not row_is_ok(r)


def _tally(rows: Sequence[RowResult]) -> tuple[int, int]:
    """Rows done or right, and rows needing attention, by the rule the exit code counts
    with (``row_results.row_is_ok``: a row the job's ``[scope]`` leaves out is ok); rows
    only planned are neither."""
    return sum(row_is_ok(r) for r in rows), sum(_needs_attention(r) for r in rows)


def _verdict(
    summary: RunSummary, counts: Counter[RowOutcome], total: int, ok: int, attention: int
) -> tuple[str, str, str]:
    """(css class, headline, sentence) answering "did it work?"."""
    stopped = _stopped_verdict(summary, ok, total)
    if stopped is not None:
        return stopped
    if summary.exit_code == ExitCode.AUTH:
        return ("v-bad", "Stopped: sign-in or permission problem",
                "The job could not authenticate to Microsoft Graph or lacked a permission. "
                "See 'Problems and what to do' below.")
    if summary.exit_code == ExitCode.REFUSED:
        return ("v-warn", "Refused: the plan exceeded a safety limit",
                "Nothing was written. Review the plan; if it is intended, run again with --force "
                "or raise the job's safety thresholds.")
    if summary.exit_code == ExitCode.USAGE:
        return ("v-bad", "Could not run", f"Exit code 2: {ExitCode.USAGE.meaning}.")
    if total and counts[RowOutcome.PLANNED] == total:
        return ("v-info", "Plan only: nothing was written",
                f"{_n(total)} rows were planned. Apply the plan to make the changes.")
    if total == 0:
        return ("v-info", "The roster had no rows", "Nothing to do.")
    if attention == 0 and summary.exit_code == ExitCode.OK:
        return ("v-ok", "It worked",
                f"All {_n(total)} rows were applied or were already right.")
    return ("v-warn" if ok else "v-bad", "Partly done" if ok else "Not done",
            f"{_n(ok)} of {_n(total)} rows are done or were already right; "
            f"{_n(attention)} need attention (see below).")


_STOPPED_HEADLINES: Mapping[str, tuple[str, str]] = {
    "interrupted": ("v-warn", "Interrupted: the run stopped before it finished"),
    "unreachable": ("v-bad", "Stopped: Microsoft Graph could not be reached"),
    "aborted": ("v-bad", "Stopped: sign-in or permission problem"),
}


def _stopped_verdict(summary: RunSummary, ok: int, total: int) -> tuple[str, str, str] | None:
    """The verdict of a run that did not finish: rows not reached are said to be so, never
    presented as a partial success."""
    sentence = ending_sentence(summary)
    if sentence is None:
        return None
    if summary.status is RunState.COMPLETED:
        return ("v-warn", "Finished, with changes left to confirm",
                f"{_n(ok)} of {_n(total)} rows are done or were already right; {sentence}.")
    css, headline = _STOPPED_HEADLINES.get(summary.stop_reason, ("v-bad", "Stopped before it finished"))
    return (css, headline, f"{_n(ok)} of {_n(total)} rows are done or were already right; {sentence}.")


def _cards(summary: RunSummary, ok: int, attention: int) -> str:
    phones_changed = sum(summary.changes_done.get(k, 0) for k in PHONE_CHANGE_KINDS)
    sms_changed = sum(summary.changes_done.get(k, 0) for k in SMS_CHANGE_KINDS)
    items = [
        (summary.rows_total, "rows in the roster"),
        (ok, "rows done or already right"),
        (attention, "rows needing attention"),
        *([(summary.rows_not_reached, "rows not reached: resume the run")]
          if summary.status is not RunState.COMPLETED else []),
        (phones_changed, "phone numbers added, changed or removed"),
        (sms_changed, "SMS sign-in changes"),
        (summary.operations, "requests sent to Microsoft Graph"),
        (summary.throttled, "times Graph asked us to slow down"),
    ]
    cells = [f'<div class="card"><div class="n">{_n(n)}</div><div class="l">{escape(label)}</div></div>'
             for n, label in items]
    cells.append(f'<div class="card"><div class="n">{escape(_duration(summary.duration_s))}</div>'
                 f'<div class="l">run time</div></div>')
    return f'<div class="cards">{"".join(cells)}</div>'


def _outcome_section(counts: Counter[RowOutcome], total: int) -> str:
    series = [Series(o.value, o.value, _CHART_COLOURS[o]) for o in RowOutcome if counts[o]]
    chart = stacked_bars([("All rows", {o.value: counts[o] for o in RowOutcome})], series,
                         title="Rows by outcome") if series else ""
    body = "".join(
        f"<tr><td>{_pill(o)}</td><td>{escape(OUTCOME_WORDS[o])}</td><td class=num>{_n(counts[o])}</td>"
        f"<td class=num>{(100 * counts[o] / total if total else 0):.1f}%</td></tr>"
        for o in RowOutcome if counts[o]
    )
    return (
        "<h2>What happened to each row</h2>"
        f'<div class="panel">{chart}<table><thead><tr><th>Outcome</th><th>Meaning</th>'
        f'<th class=num>Rows</th><th class=num>Share</th></tr></thead><tbody>{body}</tbody></table></div>'
    )


def _phone_section(rows: Sequence[RowResult]) -> str:
    by: dict[tuple[PhoneType, Action], Counter[RowOutcome]] = defaultdict(Counter)
    for r in rows:
        for pt, p in r.phones.items():
            by[(PhoneType(pt), Action(p.action))][RowOutcome(p.outcome)] += 1
    keys = [(pt, a) for pt in PHONE_TYPES for a in (Action.CREATE, Action.UPDATE, Action.DELETE, Action.NONE)
            if (pt, a) in by]
    if not keys:
        return "<h2>Phones by type and action</h2><p class=muted>No phone columns in this run.</p>"
    used = [o for o in RowOutcome if any(by[k][o] for k in keys)]
    bars = [(f"{_PHONE_LABELS[pt]}: {_ACTION_LABELS[a]}", {o.value: by[(pt, a)][o] for o in used})
            for pt, a in keys]
    chart = stacked_bars(bars, [Series(o.value, o.value, _CHART_COLOURS[o]) for o in used],
                         title="Phones by type, action and outcome")
    head = "".join(f"<th class=num>{_pill(o)}</th>" for o in used)
    body = "".join(
        f"<tr><td>{escape(_PHONE_LABELS[pt])}</td><td>{escape(_ACTION_LABELS[a])}</td>"
        + "".join(f"<td class=num>{_n(by[(pt, a)][o]) if by[(pt, a)][o] else ''}</td>" for o in used)
        + f"<td class=num><b>{_n(sum(by[(pt, a)].values()))}</b></td></tr>"
        for pt, a in keys
    )
    sms = Counter((r.sms_action, r.sms_state or "unknown") for r in rows if r.sms_action != "none")
    sms_html = ""
    if sms:
        sms_rows = "".join(
            f"<tr><td>{_e(action)}</td><td>{_e(state)}</td><td class=num>{_n(n)}</td></tr>"
            for (action, state), n in sorted(sms.items())
        )
        sms_html = (
            "<h3 class=sp>SMS sign-in</h3><table><thead><tr><th>Asked to</th><th>State afterwards</th>"
            f"<th class=num>Rows</th></tr></thead><tbody>{sms_rows}</tbody></table>"
            "<p class=muted>'ready' means the user can sign in with a code sent by SMS.</p>"
        )
    return (
        "<h2>Phones by type and action</h2>"
        f'<div class="panel">{chart}<div class="tablewrap"><table><thead><tr><th>Phone</th><th>Action</th>'
        f"{head}<th class=num>Total</th></tr></thead><tbody>{body}</tbody></table></div>{sms_html}</div>"
    )


def _changes_section(summary: RunSummary) -> str:
    kinds = ordered_kinds(summary.changes, summary.changes_done)
    if not kinds:
        return ""
    body = "".join(
        f"<tr><td>{escape(CHANGE_KIND_LABELS.get(k, k))}</td><td><code>{escape(k)}</code></td>"
        f"<td class=num>{_n(summary.changes.get(k, 0))}</td>"
        f"<td class=num>{_n(summary.changes_done.get(k, 0))}</td></tr>"
        for k in kinds
    )
    return (
        "<h2>Changes planned and done</h2>"
        '<div class="panel"><table><thead><tr><th>Change</th><th>Kind</th><th class=num>Planned</th>'
        f"<th class=num>Done</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _reasons_section(rows: Sequence[RowResult]) -> str:
    groups: dict[str, list[RowResult]] = defaultdict(list)
    for r in rows:
        if r.outcome in _ATTENTION or r.error_code:
            groups[r.error_code or ""].append(r)
    if not groups:
        return ("<h2>Problems and what to do</h2>"
                '<div class="panel">No problems: nothing needs your attention.</div>')
    parts = ["<h2>Problems and what to do</h2>",
             "<p class=muted>Rows grouped by reason, the most frequent first.</p>"]
    for code, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        remedy = remedy_for(code or None)
        outcomes = Counter(r.outcome for r in members)
        severity = ("" if outcomes[RowOutcome.FAILED] or outcomes[RowOutcome.INVALID] or outcomes[RowOutcome.PARTIAL]
                    else "info" if outcomes[RowOutcome.SKIPPED] else "warn")
        pills = " ".join(f"{_pill(o)} {_n(outcomes[o])}" for o in RowOutcome if outcomes[o])
        examples = ", ".join(f"{_e(r.user)} (row {r.row})" for r in members[:_EXAMPLES_PER_REASON])
        more = f" and {_n(len(members) - _EXAMPLES_PER_REASON)} more" if len(members) > _EXAMPLES_PER_REASON else ""
        code_html = f"<code>{_e(code)}</code>" if code else "<span class=muted>no code</span>"
        command = f"<pre>{escape(remedy.command)}</pre>" if remedy.command else ""
        parts.append(
            f'<div class="panel reason {severity}"><span class="count">{_n(len(members))}</span>'
            f"<h3>{escape(remedy.title)}</h3><div>{code_html} &nbsp; {pills}</div><dl>"
            f"<dt>What it means</dt><dd>{escape(remedy.meaning)}</dd>"
            f"<dt>What to do</dt><dd>{escape(remedy.action)}{command}</dd>"
            f"<dt>For example</dt><dd>{examples}{more}</dd></dl></div>"
        )
    return "".join(parts)


def _timeline_section(summary: RunSummary) -> str:
    head = "<h2>Speed and throttling over time</h2>"
    if not summary.timeline:
        return head + '<div class="panel muted">No timeline was recorded: nothing was sent to Microsoft Graph.</div>'
    r = rates(summary.timeline)
    lines = [TimeSeries("requests/s", "#2563eb", r["operations"]),
             TimeSeries("changes done/s", "#22a06b", r["succeeded"])]
    if r["rate_limit"]:
        lines.append(TimeSeries("pace limit (requests/s)", "#9ca3af", r["rate_limit"], "dashed"))
    speed = time_chart(lines, title="Requests and changes per second", y_label="per second")
    throttle = time_chart([TimeSeries("429 'slow down' answers", "#e5484d", r["throttled"], "bars")],
                          title="Throttling: 'slow down' answers from Graph", y_label="answers", height=200)
    avg, peak = _average_and_peak(summary.timeline)
    return (
        head + f'<div class="panel">{speed}<p class=muted>Average {avg:,.1f} requests/s while applying, '
        f"peak {peak:,.1f}/s. "
        "The job slows down by itself when Microsoft Graph throttles it, and speeds up again after.</p>"
        f"{throttle}<p class=muted>{_n(summary.throttled)} throttled answers in total; each was retried "
        "after the wait Graph asked for.</p></div>"
    )


def _average_and_peak(timeline: Sequence[ThroughputSample]) -> tuple[float, float]:
    """Requests/s over the whole timeline, and the busiest interval's, from the same samples.

    Both come from the chart's own points: the average is the intervals' rates weighted by
    their lengths, so it can't exceed the peak. (Dividing summary.operations, which counts
    the plan's reads made before the timeline starts, by the wall-clock duration, which
    includes the pause between an interruption and its resume, could.)
    """
    peak = max((v for _, v in rates(timeline)["operations"]), default=0.0)
    last = max(timeline, key=lambda s: s.t, default=None)
    if last is None or last.t <= 0:
        return 0.0, peak
    # min(): only float rounding, or operations at the very instant of a sample, could tip it over.
    return min(last.operations / last.t, peak), peak


def _phone_cell(r: RowResult, pt: PhoneType) -> str:
    p = r.phones.get(pt)
    if p is None:
        return ""
    number = mask_phone(p.desired if p.action is not Action.DELETE else p.before)
    verb = _ACTION_LABELS[Action(p.action)]
    return f"{escape(verb)} <span class=nb>{escape(number)}</span><br>{_pill(RowOutcome(p.outcome))}"


def _reason_cell(r: RowResult) -> str:
    reason = r.reason or ""
    if r.error_code and reason.startswith(f"{r.error_code}: "):
        reason = reason[len(r.error_code) + 2 :]  # the code has its own column
    parts = [_e(reason)] if reason else []
    if r.error_message and r.error_message != r.reason:
        parts.append(f"<span class=muted>{_e(r.error_message)}</span>")
    if r.request_id:
        parts.append(f"<span class='muted rid'>request-id {escape(r.request_id)}</span>")
    return "<br>".join(parts)


def _attention_section(rows: Sequence[RowResult], row_cap: int) -> str:
    attention = [r for r in rows if _needs_attention(r)]
    if not attention:
        return ""
    shown = attention[:row_cap]
    cap_note = (f'<p class="note">Showing the first {_n(len(shown))} of {_n(len(attention))} rows that need '
                'attention. Every row is in <a href="results.xlsx">results.xlsx</a> next to this page.</p>'
                if len(attention) > len(shown) else "")
    head = "".join(f"<th>{escape(_PHONE_LABELS[pt])}</th>" for pt in PHONE_TYPES)
    body = "".join(
        f"<tr><td class=num>{r.row}</td><td>{_e(r.user)}</td><td>{_pill(r.outcome)}</td>"
        + "".join(f"<td>{_phone_cell(r, pt)}</td>" for pt in PHONE_TYPES)
        + f"<td>{_e(r.error_code or '')}</td><td>{_reason_cell(r)}</td></tr>"
        for r in shown
    )
    return (
        "<h2>Rows that need attention</h2>" + cap_note
        + '<input id="filter" type="search" placeholder="Filter these rows (user, reason...)" '
        'aria-label="Filter rows">'
        f'<div class="tablewrap"><table id="attention"><thead><tr><th class=num>Row</th><th>User</th>'
        f"<th>Outcome</th>{head}<th>Code</th><th>Reason</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def render_html(rows: Sequence[RowResult], summary: RunSummary, *, row_cap: int = DEFAULT_ROW_CAP) -> str:
    """The whole page as a string."""
    counts = _outcome_counts(rows)
    total = len(rows)
    ok, attention = _tally(rows)
    css_class, headline, sentence = _verdict(summary, counts, total, ok, attention)
    sheet_names = sorted({r.sheet for r in rows if r.sheet})
    subtitle = " · ".join(x for x in (
        f"Job <b>{_e(summary.job)}</b>",
        f"target {escape(summary.target)}",
        f"mode {escape(summary.mode)}" if summary.mode else "",
        f"{escape(when(summary.started))} to {escape(when(summary.finished))}",
        f"sheets {_e(', '.join(sheet_names))}" if sheet_names else "",
    ) if x)
    exit_line = f"Exit code {summary.exit_code}: {exit_meaning(summary.exit_code)}."
    return "".join([
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">',
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        f"<title>Phone provisioning report: {_e(summary.job)}</title><style>{PAGE_CSS}</style></head>",
        "<body data-rendered=no><main>",
        f"<h1>Phone provisioning report</h1><p class=sub>{subtitle}</p>",
        f'<div class="verdict {css_class}"><strong>{escape(headline)}</strong>{escape(sentence)}</div>',
        _cards(summary, ok, attention),
        _outcome_section(counts, total),
        _phone_section(rows),
        _changes_section(summary),
        _reasons_section(rows),
        _timeline_section(summary),
        _attention_section(rows, row_cap),
        "<footer><p><b>About phone numbers on this page:</b> they are masked (like +1 *******100) because "
        "this page is meant to be shared. The full numbers are in results.xlsx and results.csv in the same "
        "folder; treat those files as personal data.</p>",
        f"<p>{escape(exit_line)} Run folder: {escape(summary.run_dir or '.')}. Made by provision.</p></footer>",
        f"</main><script>{FILTER_JS}</script></body></html>\n",
    ])


def write_html(rows: Sequence[RowResult], summary: RunSummary, dest: str | Path | TextIO | IO[str], *,
               row_cap: int = DEFAULT_ROW_CAP) -> None:
    with text_sink(dest) as fh:
        fh.write(render_html(rows, summary, row_cap=row_cap))
