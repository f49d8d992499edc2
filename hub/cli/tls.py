"""`qilu-hub tls init|show|rotate`: the hub's own CA and server certificate for HTTPS on the LAN (docs/tls.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

EXIT_TLS = 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tls", help="the hub's own CA and server certificate (HTTPS on the LAN)")
    sub = p.add_subparsers(dest="tls_command", metavar="ACTION", required=True)
    sub.add_parser("init", help="create the CA and server certificate (the hub does this itself with hub.tls: auto)"
                   ).set_defaults(func=cmd_init)
    sub.add_parser("show", help="the CA's fingerprint and constraints, the server certificate's names and expiry"
                   ).set_defaults(func=cmd_show)
    rotate = sub.add_parser("rotate", help="issue a new server certificate now (a running hub loads it within "
                                           "its next check; restart it to load it at once)")
    rotate.add_argument("--ca", action="store_true",
                        help="also a new CA (the old one is kept as ca.*.old): every device must trust the new one")
    rotate.set_defaults(func=cmd_rotate)


def _files(args: argparse.Namespace) -> Any:
    from qilu_hub.cli import config_dir
    from qilu_hub.tls import TlsFiles

    return TlsFiles(config_dir(args))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _print(files: Any) -> None:
    info = files.describe()
    print(f"CA:          {info['ca_subject']}")
    print(f"  SHA-256:   {info['ca_sha256']}")
    print(f"  valid to:  {info['ca_not_after']}")
    print(f"  may certify only: {', '.join(info['ca_permitted'])}")
    print(f"  file:      {files.ca_cert_path} (served at /api/tls/ca.crt)")
    if "server_names" in info:
        print(f"server:      {', '.join(info['server_names'])}")
        print(f"  valid to:  {info['server_not_after']}")
        print(f"  SHA-256:   {info['server_sha256']}")


def cmd_init(args: argparse.Namespace) -> int:
    from qilu_hub.tls import TlsError, lan_names

    files = _files(args)
    existed = files.has_ca()
    try:
        files.refresh(lan_names(), _now())
    except (TlsError, OSError) as err:
        print(f"qilu-hub: tls init failed: {err}", file=sys.stderr)
        return EXIT_TLS
    if existed:
        print("The CA exists already (kept); the server certificate is current.")
    _print(files)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from qilu_hub.tls import TlsError

    files = _files(args)
    if not files.has_ca():
        print(f"qilu-hub: no CA in {files.directory}; run `qilu-hub tls init` or set hub.tls: auto",
              file=sys.stderr)
        return EXIT_TLS
    try:
        _print(files)
    except TlsError as err:
        print(f"qilu-hub: {err}", file=sys.stderr)
        return EXIT_TLS
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from qilu_hub.tls import TlsError, lan_names

    files = _files(args)
    if not files.has_ca() and not args.ca:
        print(f"qilu-hub: no CA in {files.directory}; run `qilu-hub tls init`", file=sys.stderr)
        return EXIT_TLS
    try:
        files.rotate(lan_names(), _now(), new_ca=args.ca)
    except (TlsError, OSError) as err:
        print(f"qilu-hub: tls rotate failed: {err}", file=sys.stderr)
        return EXIT_TLS
    if args.ca:
        print("New CA: every phone and headset must download and trust it again (/api/tls/ca.crt).")
    _print(files)
    return 0
