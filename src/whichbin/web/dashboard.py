"""The dashboard page, rendered on the server from plain values (no JS framework: one
small script posts the login and the approve/reject forms as JSON with the CSRF token)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from whichbin.registry.base import MAX_NOTE, ApprovalStatus, ModelVersion, headline_metrics

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}
th,td{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left;font-size:.92rem}
th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#1a7f37}.failed{color:#cf222e}
.Approved{font-weight:600;color:#1a7f37}.Rejected{color:#cf222e}.PendingManualApproval{color:#9a6700}
tr.current{background:#eefbf0}
code{font-size:.85rem}
form.act{display:inline;margin:0}form.act input{width:7rem}
#session{float:right}#message{color:#cf222e}
"""
# Posts each form marked data-api as JSON, with the session's CSRF token, then reloads.
SCRIPT = """
const csrf = document.querySelector('meta[name=csrf-token]')?.content || '';
document.addEventListener('submit', async (event) => {
  const form = event.target;
  if (!form.dataset.api) return;
  event.preventDefault();
  const body = {};
  for (const [k, v] of new FormData(form)) if (v !== '') body[k] = v;
  const r = await fetch(form.dataset.api, {method: 'POST', body: JSON.stringify(body),
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}});
  if (r.ok) { location.reload(); return; }
  let detail = r.statusText;
  try { detail = (await r.json()).detail; } catch (e) {}
  document.getElementById('message').textContent =
    r.status + ': ' + (typeof detail === 'string' ? detail : JSON.stringify(detail));
});
"""


@dataclass(frozen=True)
class Visitor:
    """Who is looking: a logged-in user's name, role, whether they may approve, and the
    session's CSRF token (None when they sent Basic credentials instead of a cookie)."""

    name: str
    role: str
    approver: bool
    csrf: str | None = None


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _actions(v: ModelVersion, base: str) -> str:
    """Approve (a version that passed the gate) and reject buttons."""
    forms = ""
    if v.status != ApprovalStatus.APPROVED and v.gate == "passed":
        forms += (
            f'<form class="act approve" data-api="/api/models/{base}/approve">'
            f'<input name="note" placeholder="note" maxlength="{MAX_NOTE}">'
            "<button>Approve</button></form> "
        )
    if v.status != ApprovalStatus.REJECTED:
        forms += (
            f'<form class="act reject" data-api="/api/models/{base}/reject">'
            f'<input name="reason" placeholder="reason" required maxlength="{MAX_NOTE}">'
            "<button>Reject</button></form>"
        )
    return forms


def _row(v: ModelVersion, current: bool, approver: bool) -> str:
    m = headline_metrics(v.metrics)
    base = f"{quote(v.name)}/{v.number}"
    report = f'<a href="/reports/{base}/">report</a>' if v.report else ""
    reasons = escape("; ".join(v.reasons))
    gate = f'<span class="{v.gate}" title="{reasons}">{v.gate}</span>'
    if v.reasons:
        gate += f"<br><small>{reasons}</small>"
    status = escape(v.status.value) + (" (current)" if current else "")
    return (
        f'<tr class="{"current" if current else ""}" data-version="{escape(v.id)}">'
        f'<td><a href="/api/models/{base}">{escape(v.id)}</a></td>'
        f"<td>{escape(v.created)}</td>"
        f'<td class="num">{_num(m["accuracy"])}</td>'
        f'<td class="num">{_num(m["bin_accuracy"])}</td>'
        f'<td class="num">{_num(m["macro_f1"])}</td>'
        f"<td>{gate}</td>"
        f'<td class="{escape(v.status.value)}">{status}</td>'
        f"<td>{escape(v.approved_by or '')}</td>"
        f"<td>{escape(v.approved_at or '')}</td>"
        f"<td>{report}</td>"
        f'<td><a href="/artifacts/{base}/model.onnx"><code>{v.sha256[:12]}</code></a></td>'
        f"<td>{_actions(v, base) if approver else ''}</td>"
        "</tr>"
    )


def render_dashboard(
    versions: Sequence[ModelVersion],
    current: set[str],
    registry_uri: str,
    deploys: bool,
    visitor: Visitor | None = None,
) -> str:
    """The whole HTML page: one row per version, newest first.

    Args:
        versions: Versions to show.
        current: Ids of each model's current approved version.
        registry_uri: Shown in the header.
        deploys: Whether approvals on this server publish deployments.
        visitor: The logged-in user (None: a login form; approvers get buttons).
    """
    approver = visitor is not None and visitor.approver
    rows = "".join(
        _row(v, v.id in current, approver)
        for v in sorted(versions, key=lambda v: (v.created, v.number), reverse=True)
    )
    if not rows:
        rows = (
            '<tr><td colspan="12">No model versions yet: '
            "run <code>whichbin pipeline run</code>.</td></tr>"
        )
    deploy_note = (
        "Approvals publish the fleet deployment."
        if deploys
        else "Approvals on this server do not publish deployments (no broker configured)."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>whichbin models</title><style>{STYLE}</style>
<meta name="csrf-token" content="{escape(visitor.csrf or "") if visitor else ""}"></head>
<body>
{_session(visitor)}
<h1>whichbin models</h1>
<p id="message" role="alert"></p>
<p>Registry <code>{escape(registry_uri)}</code>. {deploy_note}
Approve here as an approver, with <code>whichbin registry approve NAME/N</code>, or
<code>POST /api/models/NAME/N/approve</code> with a login or an API token.</p>
<table id="versions">
<thead><tr><th>version</th><th>created</th><th>accuracy</th><th>bin accuracy</th>
<th>macro-F1</th><th>gate</th><th>status</th><th>approved by</th><th>approved at</th>
<th>report</th><th>artifact</th><th></th></tr></thead>
<tbody>{rows}</tbody>
</table>
<script>{SCRIPT}</script>
</body></html>
"""


def _session(visitor: Visitor | None) -> str:
    """The login form, or who is logged in with a log-out button."""
    if visitor is None:
        return (
            '<form id="session" class="login" data-api="/api/login">'
            '<input name="username" placeholder="user" autocomplete="username" required> '
            '<input name="password" type="password" placeholder="password" '
            'autocomplete="current-password" required> <button>Log in</button></form>'
        )
    logout = (
        '<form class="act" data-api="/api/logout"><button>Log out</button></form>'
        if visitor.csrf
        else ""
    )
    return (
        f'<div id="session">Logged in as <b>{escape(visitor.name)}</b> '
        f"({escape(visitor.role)}) {logout}</div>"
    )
