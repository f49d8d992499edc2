"""`qilu-hub backup create|restore|list`: archives of the config directory (see qilu_hub.backup)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_BACKUP = 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("backup", help="back up or restore the registry, configuration, scenes and models")
    sub = p.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="write a backup archive (safe while the hub runs)")
    create.add_argument("--history", action="store_true", help="include history.db (can be large)")
    create.add_argument("--output", type=Path, metavar="DIR",
                        help="folder for the archive (default: backup.directory, else CONFIG_DIR/backups)")
    create.set_defaults(func=cmd_create)
    restore = sub.add_parser("restore", help="replace the config directory's files with an archive's "
                                             "(the hub must be stopped; current files are kept as *.before-restore)")
    restore.add_argument("archive", type=Path)
    restore.set_defaults(func=cmd_restore)
    listing = sub.add_parser("list", help="list backup archives")
    listing.add_argument("--directory", type=Path, metavar="DIR",
                         help="folder to list (default: backup.directory, else CONFIG_DIR/backups)")
    listing.set_defaults(func=cmd_list)


def _config(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    from qilu_hub.cli import config_dir
    from qilu_hub.setup import load_hub_config

    directory = config_dir(args)
    return directory, load_hub_config(directory)


def cmd_create(args: argparse.Namespace) -> int:
    from qilu_hub.backup import BackupError, backup_dir, create_backup

    directory, config = _config(args)
    try:
        path = create_backup(directory, args.output or backup_dir(directory, config), config, history=args.history)
    except (BackupError, OSError) as err:
        print(f"qilu-hub: backup failed: {err}", file=sys.stderr)
        return EXIT_BACKUP
    print(path)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from qilu_hub.backup import BackupError, restore_backup
    from qilu_hub.cli import config_dir

    directory = config_dir(args)
    try:
        names = restore_backup(args.archive, directory)
    except (BackupError, OSError) as err:
        print(f"qilu-hub: restore refused: {err}\nNothing in {directory} was changed.", file=sys.stderr)
        return EXIT_BACKUP
    for name in names:
        print(f"restored {name}")
    print(f"Restored {len(names)} files into {directory}; the files they replaced end in .before-restore.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from qilu_hub.backup import backup_dir, list_backups

    if args.directory is not None:
        folder = args.directory
    else:
        directory, config = _config(args)
        folder = backup_dir(directory, config)
    backups = list_backups(folder)
    if not backups:
        print(f"no backups in {folder}")
        return 0
    print(f"{'CREATED (UTC)':<27}{'SIZE':>10}  {'VERSION':<9}{'FILES':>6}  ARCHIVE")
    for b in backups:
        print(f"{b.created_at:<27}{b.size:>10}  {b.hub_version:<9}{len(b.files):>6}  {b.path}")
    return 0
