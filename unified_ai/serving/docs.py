"""`/docs` without the internet: the OpenAPI document as one self-contained page.

FastAPI's Swagger UI and ReDoc pages load their scripts and styles from a CDN, so in a cluster
without internet access they show a blank page. No installed package ships those assets, so
this page is rendered on the server from the same OpenAPI document (`/openapi.json`): every
endpoint with its summary, description, parameters, request body schema and answers, with
inline styles and no script.
"""

import html
import json
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.3rem}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
.method{font-weight:bold;text-transform:uppercase;padding:.1rem .4rem;border-radius:4px;
background:#e8f0fe}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:.85rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _schema(value: Any) -> str:
    return f"<pre>{_e(json.dumps(value, indent=2, sort_keys=False))}</pre>"


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    parts = [
        '<div class="op">',
        f'<h3><span class="method">{_e(method)}</span> <code>{_e(path)}</code></h3>',
    ]
    if operation.get("summary"):
        parts.append(f"<p><b>{_e(operation['summary'])}</b></p>")
    if operation.get("description"):
        parts.append(f"<p>{_e(operation['description'])}</p>")
    parameters = operation.get("parameters") or []
    if parameters:
        rows = "".join(
            f"<tr><td><code>{_e(p.get('name'))}</code></td><td>{_e(p.get('in'))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td></tr>"
            for p in parameters
        )
        parts.append(
            f"<table><tr><th>parameter</th><th>in</th><th>required</th></tr>{rows}</table>"
        )
    body = (operation.get("requestBody") or {}).get("content") or {}
    for media, content in body.items():
        parts.append(f"<p>Request body (<code>{_e(media)}</code>):</p>")
        parts.append(_schema(content.get("schema", {})))
    answers = operation.get("responses") or {}
    if answers:
        rows = "".join(
            f"<tr><td>{_e(code)}</td><td>{_e(answer.get('description', ''))}</td></tr>"
            for code, answer in answers.items()
        )
        parts.append(f"<table><tr><th>status</th><th>meaning</th></tr>{rows}</table>")
    parts.append("</div>")
    return "".join(parts)


def docs_page(openapi: dict[str, Any], openapi_url: str = "/openapi.json") -> str:
    """The HTML page documenting `openapi` (no external asset, no script)."""
    info = openapi.get("info", {})
    operations = [
        _operation(path, method, operation)
        for path, methods in openapi.get("paths", {}).items()
        for method, operation in methods.items()
        if isinstance(operation, dict)
    ]
    schemas = openapi.get("components", {}).get("schemas", {})
    models = "".join(f"<h3>{_e(name)}</h3>{_schema(schema)}" for name, schema in schemas.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(info.get('title', 'API'))}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(info.get('title', 'API'))}</h1><p>{_e(info.get('description', ''))}</p>"
        f"<p>The OpenAPI document: <a href='{_e(openapi_url)}'>{_e(openapi_url)}</a>.</p>"
        f"<h2>Endpoints</h2>{''.join(operations)}<h2>Models</h2>{models}</body></html>"
    )
