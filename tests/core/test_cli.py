import subprocess
import sys
from pathlib import Path

from qilu_hub.cli import main
from qilu_hub.const import CONFIG_FILE, __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qilu_hub", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_bad_config_exits_2_and_file_is_untouched(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("hub:\n  colour: red\n")
    result = run_cli("--config", str(tmp_path), "run")
    assert result.returncode == 2
    assert "line 2" in result.stderr and "hub.colour" in result.stderr
    assert (tmp_path / CONFIG_FILE).read_text() == "hub:\n  colour: red\n"
    assert not (tmp_path / "registry.db").exists()


def test_token_lifecycle(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--config", str(tmp_path), "token", "create", "--name", "headset", "--read-only",
                 "--area", "kids_room"]) == 0
    out = capsys.readouterr().out
    token_id = out.split("id:")[1].split()[0]
    assert "qh_" in out
    assert main(["--config", str(tmp_path), "token", "list"]) == 0
    listing = capsys.readouterr().out
    assert "headset" in listing and "active" in listing and "kids_room" in listing
    assert main(["--config", str(tmp_path), "token", "revoke", token_id]) == 0
    assert main(["--config", str(tmp_path), "token", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["--config", str(tmp_path), "token", "revoke", token_id]) == 1


def test_demo_then_devices_table(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("hub:\n  port: 0\n")  # a free port: the suite may run beside a hub
    demo = run_cli("--config", str(tmp_path), "demo", "--seconds", "0.5")
    assert demo.returncode == 0, demo.stderr
    table = run_cli("--config", str(tmp_path), "devices")
    assert table.returncode == 0
    assert "Ceiling Light" in table.stdout and "light.living_room_ceiling_light" in table.stdout
    assert (tmp_path / "scenes" / "living_room.yaml").exists()  # the demo brings the example scenes


def test_token_list_shows_last_use(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import time

    from qilu_hub.const import REGISTRY_DB
    from qilu_hub.storage import RegistryStore
    from qilu_hub.tokens import TokenStore

    assert main(["--config", str(tmp_path), "token", "create", "--name", "tablet"]) == 0
    secret = capsys.readouterr().out.split("token:")[1].split()[0]
    assert main(["--config", str(tmp_path), "token", "list"]) == 0
    assert "LAST USED" in (listing := capsys.readouterr().out) and "never" in listing
    store = RegistryStore(tmp_path / REGISTRY_DB)  # the hub, authenticating a request with it
    tokens = TokenStore(store)
    assert tokens.verify(secret) is not None
    used = tokens.list()[0].last_used
    store.close()
    assert main(["--config", str(tmp_path), "token", "list"]) == 0
    listing = capsys.readouterr().out
    # The moment it was used, in local time (not today's date: the test may run across midnight).
    assert used is not None and "never" not in listing
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(used)) in listing


def test_token_expiry_is_stored_absolute_and_listed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import time

    from qilu_hub.const import REGISTRY_DB
    from qilu_hub.storage import RegistryStore
    from qilu_hub.tokens import TokenStore

    before = time.time()
    assert main(["--config", str(tmp_path), "token", "create", "--name", "guest", "--expires", "30d"]) == 0
    after = time.time()
    assert "expires:" in capsys.readouterr().out
    store = RegistryStore(tmp_path / REGISTRY_DB)
    [token] = TokenStore(store).list()
    TokenStore(store).create("old guest", expires=before - 1)
    store.close()
    assert token.expires is not None and before + 30 * 86400 <= token.expires <= after + 30 * 86400
    assert main(["--config", str(tmp_path), "token", "list"]) == 0
    listing = capsys.readouterr().out
    assert "EXPIRES" in listing and time.strftime("%Y-%m-%d %H:%M", time.localtime(token.expires)) in listing
    assert "expired" in listing  # the old guest's
    for good in ("12h", "15m", "90s"):
        assert main(["--config", str(tmp_path), "token", "create", "--name", good, "--expires", good]) == 0
    capsys.readouterr()
    for bad in ("3w", "0d", "soon"):
        assert main(["--config", str(tmp_path), "token", "create", "--name", "x", "--expires", bad]) == 2
        assert "--expires" in capsys.readouterr().err
    store = RegistryStore(tmp_path / REGISTRY_DB)
    assert len(TokenStore(store).list()) == 5  # nothing stored for the refused ones
    store.close()


def test_read_only_admin_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from qilu_hub.const import REGISTRY_DB
    from qilu_hub.storage import RegistryStore
    from qilu_hub.tokens import TokenStore

    assert main(["--config", str(tmp_path), "token", "create", "--name", "odd", "--read-only", "--admin"]) == 2
    captured = capsys.readouterr()
    assert "--read-only and --admin cannot be combined" in captured.err and "qh_" not in captured.out
    store = RegistryStore(tmp_path / REGISTRY_DB)
    assert TokenStore(store).list() == []
    store.close()
