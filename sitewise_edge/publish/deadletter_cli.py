"""The ``sitewise-edge deadletter list|replay`` command: what a SiteWise destination refused.

    sitewise-edge deadletter list -c gateway.yaml --reason InvalidRequest [--json]
    sitewise-edge deadletter replay -c gateway.yaml --alias '/plant1/temp' --rewrite-alias /plant1/temperature

    status = deadletter_command(args, config)   # from sitewise_edge/cli.py, with the parsed arguments

It asks the API of the gateway that ``config`` configures (``GET /deadletters``, ``POST
/deadletters/replay``, with the API token when one is set); when nothing answers (the gateway is
stopped), it works on the dead-letter files in the data directory, and a replay marked there is
sent when the gateway starts. Exit status: 0 ok, 1 the API refused the request, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sitewise_edge.config import Config, SitewisePublisher
from sitewise_edge.publish.deadletter import DeadLetterFilter, DeadLetterStore

EXIT_USAGE = 2  # the CLI's status for a command line or configuration that cannot work


def deadletter_command(args: argparse.Namespace, config: Config) -> int:
    """List or replay (``args.action``) the dead letters that ``args`` filters; prints, returns the exit status."""
    base, headers = _api_of(config)
    try:
        answer = _deadletters_through_api(args, base, headers)
        where = f"gateway at {base}"
    except urllib.error.HTTPError as exc:
        print(f"error: {base}: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, ConnectionError):  # no gateway running: the files themselves
        if args.action == "replay" and args.rewrite_alias and args.alias is None:
            print("error: --rewrite-alias needs --alias", file=sys.stderr)
            return EXIT_USAGE
        answer = _deadletters_in_files(args, config)
        where = f"{config.gateway.data_dir / 'deadletter'} (gateway not running)"
    if args.action == "replay":
        print(f"{answer['records']} records ({answer['values']} values) marked for replay ({where})")
    else:
        _print_dead_letters(answer["deadLetters"], where, args.json)
    return 0


def _api_of(config: Config) -> tuple[str, dict[str, str]]:
    """The base URL of the API that ``config`` configures, as seen from this machine, and its headers."""
    host = "127.0.0.1" if config.api.host in ("0.0.0.0", "", "::") else config.api.host
    headers = {"content-type": "application/json"}
    if config.api.token:
        headers["authorization"] = f"Bearer {config.api.token}"
    return f"http://{host}:{config.api.port}", headers


def _deadletter_filters(args: argparse.Namespace) -> dict[str, str]:
    given = {"publisher": args.publisher, "reason": args.reason, "alias": args.alias, "state": args.state}
    return {k: v for k, v in given.items() if v is not None}


def _deadletters_through_api(args: argparse.Namespace, base: str, headers: dict[str, str]) -> dict[str, Any]:
    """``GET /deadletters`` or ``POST /deadletters/replay``; raises urllib's errors when nothing answers."""
    filters: dict[str, Any] = _deadletter_filters(args)
    if args.action == "list":
        query = urllib.parse.urlencode(filters | {"limit": 100_000})
        req = urllib.request.Request(f"{base}/deadletters?{query}", headers=headers)
    else:
        if args.rewrite_alias:
            filters["rewriteAlias"] = args.rewrite_alias
        req = urllib.request.Request(f"{base}/deadletters/replay", data=json.dumps(filters).encode(),
                                     headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    return answer


def _deadletters_in_files(args: argparse.Namespace, config: Config) -> dict[str, Any]:
    """What the API would answer, from the dead-letter files of a stopped gateway."""
    flt = DeadLetterFilter(reason=args.reason, alias=args.alias, state=args.state)
    names = [p.name for p in config.publishers if isinstance(p, SitewisePublisher)
             and (args.publisher is None or p.name == args.publisher)]
    stores = [DeadLetterStore(config.gateway.data_dir / "deadletter" / f"{name}.jsonl", name) for name in names]
    if args.action == "list":
        return {"deadLetters": [r.to_json() for st in stores for r in st.list(flt)]}
    chosen = [r for st in stores for r in st.mark_replay(flt, args.rewrite_alias)]
    return {"records": len(chosen), "values": sum(r.values for r in chosen)}


def _print_dead_letters(records: list[dict[str, Any]], where: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(records, indent=1))
        return
    print(f"{len(records)} dead letters ({sum(len(r['entry'].get('propertyValues', ())) for r in records)} values) "
          f"in {where}")
    for r in records:
        entry = r["entry"]
        target = entry.get("propertyAlias") or f"{entry.get('assetId')}/{entry.get('propertyId')}"
        print(f"{r['publisher']:<12} {r['state']:<7} {len(entry.get('propertyValues', ())):>3} values  {target}  "
              f"{r['reason']}")
