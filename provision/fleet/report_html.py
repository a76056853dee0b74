"""The fleet's report.html: one self-contained page, rendered from fleet_summary.json's data.

It answers "which tenants need me?" first: a verdict, counts by status, then the tenants
needing attention (worst first, each with its message and a link to its own run's
report.html), then the healthy ones in one collapsed, compact table, so a fleet of
thousands of tenants still gives a page a browser opens at once. The look is the single
run's page (its CSS and Content-Security-Policy); free text is escaped with anything
phone-shaped masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from provision.errors import exit_meaning
from provision.masking import mask_in_text
from provision.report.html_report import FILTER_JS, PAGE_CSP, PAGE_CSS, when  # the single run's look, script, times

__all__ = ["STATUS_COLOURS", "STATUS_WORDS", "render_fleet_html"]

# What each tenant status means to the reader, as the page and fleet.xlsx say it.
STATUS_WORDS: Mapping[str, str] = {
    "auth_failed": "sign-in or permission failure: fix the credential or the app's consent",
    "stopped": "stopped before finishing: resume it",
    "lost": "its worker was lost on every attempt: resume it",
    "bad_input": "bad job, override or roster: nothing was written",
    "refused": "refused by a safety threshold: nothing was written",
    "quarantined": "quarantined: too many writes failed, it stopped writing",
    "rows_failed": "some rows failed",
    "drift": "changes pending (plan only)",
    "ok": "every row applied or already right",
}

# Fill colours (RGB hex): the xlsx outcome palette's hues, by how urgent the status is.
STATUS_COLOURS: Mapping[str, str] = {
    "auth_failed": "FFC7CE",
    "stopped": "FFC7CE",
    "lost": "FFC7CE",
    "bad_input": "FFC7CE",
    "refused": "FFEB9C",
    "quarantined": "FFEB9C",
    "rows_failed": "FFEB9C",
    "drift": "DDD5F3",
    "ok": "C6EFCE",
}

_BLOCKING = frozenset({"auth_failed", "stopped", "lost", "bad_input"})

_FLEET_CSS = """
details.healthy summary { cursor:pointer; font-weight:600; padding:6px 0; }
table.compact td, table.compact th { padding:3px 8px; font-size:13px; }
td.msg { overflow-wrap:anywhere; }
"""


def _e(value: object) -> str:
    return escape(mask_in_text(str(value)))


def _n(value: int) -> str:
    return f"{value:,}"


def _pill(status: str) -> str:
    rgb = STATUS_COLOURS.get(status)
    style = f"background:#{rgb}" if rgb else "background:#fff"
    return f'<span class="pill" style="{style}">{escape(status)}</span>'


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m} min" if h else f"{m} min {sec} s" if m else f"{seconds:.1f} s"


def _link(tenant: Mapping[str, Any]) -> str:
    href = tenant.get("report_html")
    if not href:
        return ""
    return f'<a href="{escape(quote(str(href)))}">report</a>'


def _who(tenant: Mapping[str, Any]) -> str:
    name, tid = str(tenant["name"]), str(tenant["tenant_id"])
    return _e(name) if name == tid else f"{_e(name)}<br><span class='muted rid'>{_e(tid)}</span>"


def _verdict(summary: Mapping[str, Any]) -> tuple[str, str, str]:
    total = int(summary["tenants_total"])
    by = summary["tenants_by_status"]
    attention = int(summary["tenants_needing_attention"])
    pending = int(by.get("drift", 0))
    if total == 0:
        return "v-info", "No tenants ran", "The fleet file selected no tenant (groups, exclusions, enabled)."
    if attention == 0:
        if summary.get("action") == "plan":
            return ("v-info", "Plan only: nothing was written",
                    f"{_n(total)} tenants planned; {_n(pending)} have changes pending.")
        return "v-ok", "It worked", f"All {_n(total)} tenants finished; every row was applied or already right."
    blocking = sum(int(by.get(s, 0)) for s in _BLOCKING)
    css = "v-bad" if blocking else "v-warn"
    sentence = f"{_n(attention)} of {_n(total)} tenants need attention (the first table below)."
    if summary.get("resume_command"):
        sentence += f" Finish the stopped ones with {summary['resume_command']}"
    return css, f"{_n(total - attention)} of {_n(total)} tenants done", sentence


def _cards(summary: Mapping[str, Any]) -> str:
    totals = summary["totals"]
    items: list[tuple[str, str]] = [(_n(int(summary["tenants_total"])), "tenants")]
    items += [(_n(int(n)), escape(status)) for status, n in summary["tenants_by_status"].items() if n]
    items += [
        (_n(int(totals["rows_total"])), "roster rows"),
        (_n(int(totals["rows_ok"])), "rows done or already right"),
        (_n(int(totals["rows_failed"])), "rows needing attention"),
        (_n(sum(int(v) for v in totals["changes_done"].values())), "changes done"),
        (_n(int(totals["throttled"])), "times Graph asked us to slow down"),
        (escape(_duration(summary.get("duration_s"))) or "-", "run time"),
    ]
    cells = "".join(f'<div class="card"><div class="n">{n}</div><div class="l">{label}</div></div>'
                    for n, label in items)
    return f'<div class="cards">{cells}</div>'


def _attention(tenants: Sequence[Mapping[str, Any]]) -> str:
    shown = [t for t in tenants if t["needs_attention"]]
    if not shown:
        return ""
    body = "".join(
        f"<tr><td>{_who(t)}</td><td>{_pill(str(t['status']))}</td><td class=num>{int(t['exit_code'])}</td>"
        f"<td class=msg>{_e(t['message'])}{'<br>' if t['message'] else ''}"
        f"<span class=muted>{escape(STATUS_WORDS.get(str(t['status']), ''))}</span>"
        + (f"<br><code>{escape(str(t['resume_command']))}</code>" if t.get("resume_command") else "")
        + f"</td><td class=num>{_n(int(t['rows_failed']))} / {_n(int(t['rows_total']))}</td>"
        f"<td class=num>{_n(sum(t['changes_done'].values()))}</td><td>{_link(t)}</td></tr>"
        for t in shown
    )
    return (
        f"<h2>Tenants that need attention ({_n(len(shown))})</h2>"
        '<p class=muted>Worst first: sign-in failures, stopped, bad input, refused, quarantined, rows failed.</p>'
        '<input id="filter" type="search" placeholder="Filter these tenants" aria-label="Filter tenants">'
        '<div class="tablewrap"><table id="attention"><thead><tr><th>Tenant</th><th>Status</th>'
        "<th class=num>Exit</th><th>What happened</th><th class=num>Rows failed / total</th>"
        f"<th class=num>Changes done</th><th>Report</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _healthy(tenants: Sequence[Mapping[str, Any]]) -> str:
    shown = [t for t in tenants if not t["needs_attention"]]
    if not shown:
        return ""
    # Compact on purpose: one short row per tenant keeps 1,000 tenants well under a megabyte.
    body = "".join(
        f"<tr><td>{_e(t['name'])}</td><td>{_pill(str(t['status']))}</td>"
        f"<td class=num>{_n(int(t['rows_total']))}</td><td class=num>{_n(sum(t['changes'].values()))}</td>"
        f"<td class=num>{_n(sum(t['changes_done'].values()))}</td><td class=num>{_n(int(t['throttled']))}</td>"
        f"<td class=num>{escape(_duration(t.get('duration_s')))}</td><td>{_link(t)}</td></tr>"
        for t in shown
    )
    return (
        f'<h2>Healthy tenants ({_n(len(shown))})</h2><details class="healthy"><summary>Show them</summary>'
        '<div class="tablewrap"><table class="compact"><thead><tr><th>Tenant</th><th>Status</th>'
        "<th class=num>Rows</th><th class=num>Planned</th><th class=num>Done</th><th class=num>Throttled</th>"
        f"<th class=num>Time</th><th>Report</th></tr></thead><tbody>{body}</tbody></table></div></details>"
    )


def _excluded(summary: Mapping[str, Any]) -> str:
    excluded = summary.get("excluded") or []
    if not excluded:
        return ""
    items = "".join(f"<li><code>{_e(x.get('tenant_id', ''))}</code> {_e(x.get('reason', ''))}</li>"
                    for x in excluded)
    return f"<h2>Tenants not run ({_n(len(excluded))})</h2><ul class=muted>{items}</ul>"


def render_fleet_html(summary: Mapping[str, Any]) -> str:
    """The whole page, from ``fleet_summary``'s data (tenants already in reading order)."""
    css, headline, sentence = _verdict(summary)
    tenants: Sequence[Mapping[str, Any]] = summary["tenants"]
    subtitle = " · ".join(x for x in (
        f"Fleet <b>{_e(summary['fleet'])}</b>",
        f"{escape(str(summary['action']))}" if summary.get("action") else "",
        f"{escape(when(str(summary['started'])))} to {escape(when(str(summary['finished'])))}"
        if summary.get("started") and summary.get("finished") else "",
        _e(summary["executor"]) if summary.get("executor") else "",
    ) if x)
    code = int(summary["exit_code"])
    return "".join([
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">',
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        f"<title>Fleet report: {_e(summary['fleet'])}</title><style>{PAGE_CSS}{_FLEET_CSS}</style></head>",
        "<body data-rendered=no><main>",
        f"<h1>Fleet report</h1><p class=sub>{subtitle}</p>",
        f'<div class="verdict {css}"><strong>{escape(headline)}</strong>{_e(sentence)}</div>',
        _cards(summary),
        _attention(tenants),
        _healthy(tenants),
        _excluded(summary),
        "<footer><p><b>About phone numbers on this page:</b> they are masked, because this page is meant "
        "to be shared. Every row of every tenant, with full numbers, is in fleet.xlsx next to this page; "
        "treat it as personal data.</p>",
        f"<p>{escape(f'Exit code {code}: {exit_meaning(code)}.')} Made by provision.</p></footer>",
        f"</main><script>{FILTER_JS}</script></body></html>\n",
    ])
