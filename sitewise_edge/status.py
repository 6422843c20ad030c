"""``sitewise-edge status``: the running gateway's ``/health`` as an overview in a terminal.

    health = fetch_health("http://127.0.0.1:8080")
    print(render(health, "http://127.0.0.1:8080"))

``/health`` needs no credentials (liveness probes use it), so neither does this command.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from sitewise_edge.errors import SitewiseEdgeError


def fetch_health(url: str, verify: bool | str = True, timeout: float = 10.0) -> dict[str, Any]:
    """GET ``url``/health (its body also when the gateway answers 503); SitewiseEdgeError when none answers.
    ``verify``: False accepts any certificate; a path trusts that certificate (the gateway's self-signed one)."""
    context = None
    if isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    elif url.startswith("https") and not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout, context=context) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SitewiseEdgeError(f"no gateway answers at {url}: {reason}") from None
    try:
        health: dict[str, Any] = json.loads(body)
    except ValueError:
        raise SitewiseEdgeError(f"{url}/health did not answer JSON: is it a sitewise-edge gateway?") from None
    return health


def _age(seconds: Any) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _size(n: Any) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
            for row in [header, *rows]]


def render(health: dict[str, Any], url: str) -> str:
    """The overview: the verdict and why, then sources, store and publishers."""
    lines = [f"gateway {health.get('gateway', '?')} at {url}: {health.get('status', '?').upper()}"]
    lines += [f"  - {r}" for r in health.get("reasons", [])]
    sources = health.get("sources", {})
    lines.append(f"\nsources ({len(sources)})")
    if sources:
        rows = [[name, s.get("state", "?"), str(s.get("valuesRead", 0)), str(len(s.get("tagErrors") or {})),
                 str(s.get("reconnects", 0)), (s.get("lastError") or "")[:60]] for name, s in sources.items()]
        lines += _table(["name", "state", "values read", "tag errors", "reconnects", "last error"], rows)
    store = health.get("store", {})
    disk = store.get("disk") or {}
    lines.append("\nstore")
    lines.append(f"  {store.get('state', '?')}: {store.get('valuesAccepted', 0)} values accepted, "
                 f"{store.get('valuesRejected', 0)} rejected, {store.get('valuesLost', 0)} lost; "
                 f"{_size(store.get('diskBytes'))} in {store.get('dataDir', '?')}"
                 + (f", {_size(disk.get('freeBytes'))} free" if isinstance(disk, dict) and "freeBytes" in disk else ""))
    if store.get("lastError"):
        lines.append(f"  last error: {store['lastError']}")
    publishers = health.get("publishers", {})
    lines.append(f"\npublishers ({len(publishers)})")
    if publishers:
        rows = [[name, p.get("state", "?"), str(p.get("valuesSent", p.get("daysExported", 0))),
                 f"{float(p.get('rate') or 0):.0f}", str(p.get("backlogRecords", "-")),
                 _age(p.get("oldestUnsentAgeSeconds")), str(p.get("valuesRejected", 0)),
                 (p.get("lastError") or "")[:50]] for name, p in publishers.items()]
        lines += _table(["name", "state", "sent", "values/s", "backlog", "lag", "dead letters", "last error"], rows)
    return "\n".join(lines)
