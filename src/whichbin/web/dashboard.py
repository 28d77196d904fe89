"""The dashboard page, rendered on the server from plain values (no JS framework)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from whichbin.registry.base import ModelVersion, headline_metrics

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
"""


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _row(v: ModelVersion, current: bool) -> str:
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
        "</tr>"
    )


def render_dashboard(
    versions: Sequence[ModelVersion], current: set[str], registry_uri: str, deploys: bool
) -> str:
    """The whole HTML page: one row per version, newest first.

    Args:
        versions: Versions to show.
        current: Ids of each model's current approved version.
        registry_uri: Shown in the header.
        deploys: Whether approvals on this server publish deployments.
    """
    rows = "".join(
        _row(v, v.id in current)
        for v in sorted(versions, key=lambda v: (v.created, v.number), reverse=True)
    )
    if not rows:
        rows = (
            '<tr><td colspan="11">No model versions yet: '
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
<title>whichbin models</title><style>{STYLE}</style></head>
<body>
<h1>whichbin models</h1>
<p>Registry <code>{escape(registry_uri)}</code>. {deploy_note}
Approve with <code>whichbin registry approve NAME/N</code> or
<code>POST /api/models/NAME/N/approve</code>.</p>
<table id="versions">
<thead><tr><th>version</th><th>created</th><th>accuracy</th><th>bin accuracy</th>
<th>macro-F1</th><th>gate</th><th>status</th><th>approved by</th><th>approved at</th>
<th>report</th><th>artifact</th></tr></thead>
<tbody>{rows}</tbody>
</table>
</body></html>
"""
