import socket
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


# -- a CLI without traps (issue #18) ---------------------------------------------------------------------------


def _held_port() -> socket.socket:
    """A listening socket on a kernel-chosen loopback port: "something else runs on the hub's port"."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held


def test_global_options_accepted_after_the_subcommand(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from qilu_hub.cli import build_parser

    elsewhere = tmp_path / "elsewhere"
    assert main(["token", "create", "--config", str(tmp_path), "--name", "phone"]) == 0
    capsys.readouterr()
    # The value after the subcommand wins over one before it.
    assert main(["--config", str(elsewhere), "token", "list", "--config", str(tmp_path)]) == 0
    assert "phone" in capsys.readouterr().out
    parser = build_parser()
    args = parser.parse_args(["label", "list", "--hub", "http://hub.example:9000", "--token", "t", "-v"])
    assert (args.hub, args.token, args.verbose) == ("http://hub.example:9000", "t", True)
    before = parser.parse_args(["--config", str(tmp_path), "devices"])  # before it: not overwritten by a default
    assert before.config == tmp_path and before.verbose is False
    assert parser.parse_args(["label", "--hub", "http://h:1", "stop"]).hub == "http://h:1"


def test_demo_moves_off_a_port_in_use_without_a_traceback(tmp_path: Path) -> None:
    with _held_port() as held:
        taken = held.getsockname()[1]
        (tmp_path / CONFIG_FILE).write_text(f"hub:\n  port: {taken}\n")  # the demo's default port, occupied
        demo = run_cli("demo", "--config", str(tmp_path), "--seconds", "0.5")
    assert demo.returncode == 0, demo.stderr
    assert f"port {taken} is in use" in demo.stdout and "Traceback" not in demo.stderr
    dashboard = next(line for line in demo.stdout.splitlines() if "dashboard" in line)
    assert f":{taken}/" not in dashboard


def test_run_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with _held_port() as held:
        taken = held.getsockname()[1]
        result = run_cli("run", "--config", str(tmp_path), "--port", str(taken))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"qilu-hub: cannot listen on 127.0.0.1:{taken}")


def test_demo_removes_its_temporary_folder_and_keep_keeps_one_the_printed_commands_use(tmp_path: Path) -> None:
    import os
    import shlex

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    demo = subprocess.run([sys.executable, "-m", "qilu_hub", "demo", "--port", "0", "--seconds", "0.3"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert demo.returncode == 0, demo.stderr
    assert "qilu-hub demo: config in " + str(scratch) in demo.stdout  # it did use a temporary folder there
    assert not [p for p in scratch.iterdir() if p.name.startswith("qilu-hub-demo-")]  # and left none behind

    kept = tmp_path / "demo"
    demo = run_cli("demo", "--keep", str(kept), "--port", "0", "--seconds", "0.3")
    assert demo.returncode == 0, demo.stderr
    assert (kept / CONFIG_FILE).exists() and (kept / "scenes" / "living_room.yaml").exists()
    follow_ups = [shlex.split(line) for line in demo.stdout.splitlines()
                  if line.startswith("  qilu-hub ")]
    assert len(follow_ups) == 3  # devices, token create, scenes check: each names the kept configuration
    for command in follow_ups:
        assert command[command.index("--config") + 1] == str(kept)
        result = run_cli(*command[1:])
        assert result.returncode == 0, (command, result.stderr)


def test_drivers_command_lists_drivers_without_importing_them() -> None:
    code = ("import sys; from qilu_hub.cli import main; rc = main(['drivers']); "
            "print('IMPORTED', [m for m in sys.modules if m.startswith('qilu_hub.drivers.') and "
            "m.endswith('.driver')]); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()}
    for name, quality in (("shelly", "silver"), ("qoap", "gold"), ("xiaomi", "bronze")):
        assert quality in rows[name] and "built-in" in rows[name]
    assert "IMPORTED []" in result.stdout


def test_verbose_start_logs_components_and_drivers(tmp_path: Path) -> None:
    demo = run_cli("demo", "--keep", str(tmp_path), "--port", "0", "--seconds", "0.3", "-v")
    assert demo.returncode == 0, demo.stderr
    assert "components: " in demo.stderr and "api" in demo.stderr
    assert "driver shelly 1.0.0" in demo.stderr and "quality silver" in demo.stderr


def test_xr_without_the_extra_names_the_install_command(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "xr", None)  # as after `pip install qilu-hub` without [xr]
    monkeypatch.delitem(sys.modules, "qilu_hub.xr_bridge.runtime", raising=False)
    scene = tmp_path / "scene.yaml"
    scene.write_text("immersive_scenes: []\n")
    assert main(["xr", "--hub", "ws://127.0.0.1:1/api/stream", "--scene", str(scene)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'qilu-hub[xr]'" in err and len(err.strip().splitlines()) == 1


def test_one_token_variable_and_the_old_one_still_works(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as closed:  # bound, not listening: connections are refused, and the port stays ours
        closed.bind(("127.0.0.1", 0))
        hub = f"http://127.0.0.1:{closed.getsockname()[1]}"
        monkeypatch.delenv("QILU_HUB_TOKEN", raising=False)
        monkeypatch.setenv("QILU_TOKEN", "qh_old")
        assert main(["label", "list", "--hub", hub]) == 3  # the token was taken; the hub is not there
        err = capsys.readouterr().err
        assert "$QILU_TOKEN is deprecated" in err and "cannot reach the hub" in err
        monkeypatch.delenv("QILU_TOKEN")
        assert main(["label", "list", "--hub", hub]) == 2
        assert "qilu-hub token create --name NAME" in capsys.readouterr().err


def test_discover_ble_without_bluez_is_one_clean_line(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}"}
    result = subprocess.run([sys.executable, "-m", "qilu_hub", "discover", "--ble", "--seconds", "0.2",
                             "--interface", "127.0.0.1", "--type", "_qilu-none._tcp"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "BlueZ" in lines[0] and "no-bus" in lines[0]
    assert "FileNotFoundError" not in result.stderr


def test_unexpected_error_is_one_line_and_its_traceback_only_with_verbose(
        tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from qilu_hub.cli import core

    def broken(args: object) -> int:  # a bug somewhere below a command
        raise RuntimeError("boom")

    monkeypatch.setattr(core, "cmd_devices", broken)
    assert main(["devices", "--config", str(tmp_path)]) == 70
    err = capsys.readouterr().err
    assert err.strip() == "qilu-hub: unexpected error: RuntimeError: boom (run with -v for the traceback)"
    with pytest.raises(RuntimeError, match="boom"):
        main(["devices", "--config", str(tmp_path), "-v"])


def test_the_command_line_loads_no_simulator_or_certificate_code_to_parse() -> None:
    """Every command, ``run`` included, builds the whole parser first; the simulate command's choices once imported
    the fleet and with it every simulator, cryptography and zeroconf (~15 MiB kept by a running hub)."""
    heavy = ("cryptography", "zeroconf", "qilu_hub.drivers.fleet", "qilu_hub.drivers.qoap.simulator",
             "qilu_hub.sdk.testing",
             "aiohttp")  # the area commands' client: imported before the API, it read the CA bundle again at start
    code = ("import sys; from qilu_hub.cli import build_parser; build_parser(); "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    # the choices are still the fleet's and the simulator's
    from qilu_hub.cli import build_parser
    from qilu_hub.drivers.fleet import KINDS
    from qilu_hub.drivers.qoap.simulator import VARIANTS

    parser = build_parser()
    for kind in KINDS:
        assert parser.parse_args(["simulate", kind]).kind == kind
    for variant in VARIANTS:
        assert parser.parse_args(["simulate", "fridge", "--variant", variant]).variant == variant
    bad = run_cli("simulate", "toaster")
    assert bad.returncode == 2 and "invalid choice: 'toaster'" in bad.stderr and "washing_machine" in bad.stderr
