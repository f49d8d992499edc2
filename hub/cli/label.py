"""``qilu-hub label``: tell a running hub what the household is doing, for training the scene model.

The same actions as the dashboard's "What's happening now?" panel (and ``edit``), through the REST API
(``/api/recognition/labels``), so a script, a shortcut or an automation can label too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import TOKEN_ENV, spread_options, token_from_env

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("label", help="label what the household is doing now (training data)")
    parser.add_argument("--hub", default="http://127.0.0.1:8123", help="the hub's URL (default %(default)s)")
    parser.add_argument("--token", default=None, help=f"access token (default: ${TOKEN_ENV})")
    sub = parser.add_subparsers(dest="label_command", metavar="ACTION", required=True)
    start = sub.add_parser("start", help="the household is doing SCENE from now until 'stop'")
    start.add_argument("scene")
    start.add_argument("--note", default="")
    start.set_defaults(func=cmd_start)
    sub.add_parser("stop", help="end the open label now").set_defaults(func=cmd_stop)
    add = sub.add_parser("add", help="a past interval: SCENE from START to END (ISO 8601 times)")
    add.add_argument("scene")
    add.add_argument("start", type=_when)
    add.add_argument("end", type=_when)
    add.add_argument("--note", default="")
    add.set_defaults(func=cmd_add)
    listing = sub.add_parser("list", help="recent labels, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=cmd_list)
    edit = sub.add_parser("edit", help="correct a label by id: its scene, start, end or note")
    edit.add_argument("label_id")
    edit.add_argument("--scene")
    edit.add_argument("--start", type=_when)
    ends = edit.add_mutually_exclusive_group()
    ends.add_argument("--end", type=_when)
    ends.add_argument("--reopen", action="store_true", help="remove the end: the label runs until 'stop'")
    edit.add_argument("--note")
    edit.set_defaults(func=cmd_edit)
    suggest = sub.add_parser("suggest", help="what the hub thinks happened on a past day: suggestions to label")
    when = suggest.add_mutually_exclusive_group()
    when.add_argument("--day", type=dt.date.fromisoformat, help="a local calendar day, YYYY-MM-DD (default yesterday)")
    when.add_argument("--start", type=_when, help="start of the stretch (ISO 8601); with --end")
    suggest.add_argument("--end", type=_when, help="end of the stretch (ISO 8601)")
    suggest.add_argument("--min-minutes", type=int, default=0,
                         help="fold shorter segments into a neighbour (default 0: every minute as reviewed)")
    suggest.add_argument("--all", action="store_true", help="also show idle time and what is already labelled")
    suggest.add_argument("--json", action="store_true", help="print the hub's answer as JSON")
    suggest.set_defaults(func=cmd_suggest)
    delete = sub.add_parser("delete", help="delete a label by id")
    delete.add_argument("label_id")
    delete.set_defaults(func=cmd_delete)
    spread_options(parser, ("hub", "token"))  # `label list --hub URL` as well as `label --hub URL list`


def _when(text: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-27T07:30)") from None
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()  # naive: local time


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        field = f" (field {body['field']})" if body.get("field") else ""
        super().__init__(f"{body.get('message', 'refused')}{field} [HTTP {status}, {body.get('code', '?')}]")


def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> Any:
    token = args.token or token_from_env()
    if not token:
        raise ValueError(f"an access token is needed: --token or ${TOKEN_ENV} "
                         "(make one with: qilu-hub token create --name NAME)")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.hub.rstrip("/") + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read())
        except ValueError:
            detail = {}
        raise _Refused(err.code, detail if isinstance(detail, dict) else {}) from None


def _run(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    try:
        return 0, _call(args, method, path, body, timeout)
    except ValueError as err:
        print(f"qilu-hub label: {err}", file=sys.stderr)
        return EXIT_USAGE, None
    except _Refused as err:
        print(f"qilu-hub label: the hub refused: {err}", file=sys.stderr)
        return EXIT_REFUSED, None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        print(f"qilu-hub label: cannot reach the hub at {args.hub}: {reason}", file=sys.stderr)
        return EXIT_UNREACHABLE, None


def _describe(label: dict[str, Any]) -> str:
    def clock(ts: float | None) -> str:
        return "now" if ts is None else dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M")

    note = f"  ({label['note']})" if label.get("note") else ""
    return f"{label['id']}  {label['scene']:<12} {clock(label['start'])} → {clock(label.get('end'))}{note}"


def cmd_start(args: argparse.Namespace) -> int:
    code, label = _run(args, "POST", "/api/recognition/labels", {"scene": args.scene, "note": args.note})
    if label is not None:
        print(f"labelling from now: {_describe(label)}")
    return code


def cmd_stop(args: argparse.Namespace) -> int:
    code, label = _run(args, "POST", "/api/recognition/labels/stop", {})
    if label is not None:
        print(f"ended: {_describe(label)}")
    return code


def cmd_add(args: argparse.Namespace) -> int:
    body = {"scene": args.scene, "start": args.start, "end": args.end, "note": args.note}
    code, label = _run(args, "POST", "/api/recognition/labels", body)
    if label is not None:
        print(f"added: {_describe(label)}")
    return code


def cmd_list(args: argparse.Namespace) -> int:
    code, answer = _run(args, "GET", f"/api/recognition/labels?limit={max(1, args.limit)}")
    if answer is not None:
        for label in answer["labels"]:
            print(_describe(label))
        print(f"scenes: {', '.join(answer['scenes'])}")
    return code


def _label_path(label_id: str) -> str:
    return f"/api/recognition/labels/{urllib.parse.quote(label_id, safe='')}"


def cmd_edit(args: argparse.Namespace) -> int:
    fields = ("scene", "start", "end", "note")
    body: dict[str, Any] = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    if args.reopen:
        body["end"] = None
    if not body:
        print("qilu-hub label edit: nothing to change; give --scene, --start, --end, --reopen or --note",
              file=sys.stderr)
        return EXIT_USAGE
    code, label = _run(args, "PATCH", _label_path(args.label_id), body)
    if label is not None:
        print(f"corrected: {_describe(label)}")
    return code


def cmd_delete(args: argparse.Namespace) -> int:
    code, label = _run(args, "DELETE", _label_path(args.label_id))
    if label is not None:
        print(f"deleted: {_describe(label)}")
    return code


def _stretch(args: argparse.Namespace) -> tuple[float, float] | str:
    """(start, end) of the stretch to review, or why the arguments do not make one."""
    if args.start is not None or args.end is not None:
        if args.start is None or args.end is None:
            return "give both --start and --end, or --day"
        return args.start, args.end
    day = args.day or (dt.date.today() - dt.timedelta(days=1))
    midnight = dt.datetime.combine(day, dt.time()).astimezone()  # local midnight, whatever the offset that day
    following = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).astimezone()
    return midnight.timestamp(), following.timestamp()


def cmd_suggest(args: argparse.Namespace) -> int:
    stretch = _stretch(args)
    if isinstance(stretch, str):
        print(f"qilu-hub label suggest: {stretch}", file=sys.stderr)
        return EXIT_USAGE
    query = urllib.parse.urlencode({"start": stretch[0], "end": stretch[1], "min_minutes": max(0, args.min_minutes)})
    # A week of history takes a while on a gateway; the hub reviews one stretch at a time.
    code, answer = _run(args, "GET", f"/api/recognition/labels/suggestions?{query}", timeout=300.0)
    if answer is None:
        return code
    if args.json:
        print(json.dumps(answer, indent=2))
        return code
    how = "with look-ahead (day-review model)" if answer["lookahead"] else "with the live model (no review model)"
    print(f"{len(answer['segments'])} segments from {answer['events']} recorded changes, {how}")
    for seg in answer["segments"]:
        if not args.all and (seg["scene"] == "idle" or seg["labelled"]):
            continue
        start, end = (dt.datetime.fromtimestamp(seg[k]).astimezone() for k in ("start", "end"))
        mark = "  [labelled]" if seg["labelled"] else ""
        print(f"{seg['scene']:<12} {start:%Y-%m-%d %H:%M} → {end:%H:%M}  {seg['confidence']:.2f}{mark}")
        if seg["scene"] != "idle" and not seg["labelled"]:
            print(f"    accept: qilu-hub label add {seg['scene']} {start.isoformat()} {end.isoformat()}")
    return code
