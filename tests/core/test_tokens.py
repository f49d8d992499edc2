import time
from pathlib import Path

import pytest

from qilu_hub.storage import RegistryStore
from qilu_hub.tokens import Scopes, TokenStore


def test_tokens_are_stored_hashed_and_revocable(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    tokens = TokenStore(store)
    token, secret = tokens.create("phone")
    assert tokens.verify(secret) is not None and tokens.verify(secret).id == token.id  # type: ignore[union-attr]
    raw = (tmp_path / "r.db").read_bytes() + (tmp_path / "r.db-wal").read_bytes()
    assert secret.encode() not in raw
    assert tokens.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert tokens.verify("") is None and tokens.verify(None) is None  # type: ignore[arg-type]
    assert tokens.revoke(token.id)
    assert tokens.verify(secret) is None
    store.close()


def test_scopes() -> None:
    kids = Scopes(read_only=False, areas=frozenset({"kids_room"}))
    assert kids.can_control("light.kids_lamp", "kids_room")
    assert not kids.can_see("lock.front_door", "hall")
    assert not kids.can_control("lock.front_door", None)
    viewer = Scopes(read_only=True)
    assert viewer.can_see("lock.front_door", "hall") and not viewer.can_control("lock.front_door", "hall")
    one = Scopes(entities=frozenset({"switch.fan"}))
    assert one.can_control("switch.fan", None) and not one.can_see("switch.other", None)
    assert Scopes.from_dict(kids.to_dict()) == kids


def test_last_used_is_written_at_most_once_per_interval(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    tokens = TokenStore(store)
    token, secret = tokens.create("phone")
    assert tokens.list()[0].last_used is None
    writes: list[str] = []
    store._conn.set_trace_callback(lambda sql: writes.append(sql) if sql.startswith("UPDATE tokens") else None)
    before = time.time()
    for _ in range(1000):  # a busy client: cached and re-read verdicts alike
        assert tokens.verify(secret) is not None
    assert len(writes) == 1
    first = tokens.list()[0].last_used
    assert first is not None and before <= first <= time.time()
    tokens.touch_interval = 0.0  # the minute has passed
    assert tokens.verify(secret) is not None
    assert len(writes) == 2 and tokens.list()[0].last_used >= first  # type: ignore[operator]
    assert tokens.verify("qh_wrong") is None and len(writes) == 2  # failures record nothing
    other = TokenStore(store)  # another process (the CLI) sees it
    assert other.list()[0].last_used == tokens.list()[0].last_used and token.id == other.list()[0].id
    store.close()


def test_a_failing_last_used_write_does_not_refuse_the_token(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    tokens = TokenStore(store)
    _, secret = tokens.create("phone")
    store._conn.execute("CREATE TRIGGER no_touch BEFORE UPDATE OF last_used ON tokens "
                        "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    assert tokens.verify(secret) is not None
    store.close()


def test_durations() -> None:
    from qilu_hub.tokens import parse_duration

    assert parse_duration("30d") == 30 * 86400 and parse_duration("12h") == 43200
    assert parse_duration("15m") == 900 and parse_duration("90s") == 90 and parse_duration(" 2D ") == 172800
    for bad in ("", "30", "d", "1.5h", "-1d", "0s", "3w", "1d2h", "9" * 12 + "d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_read_only_admin_is_refused_and_never_admin(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    with pytest.raises(ValueError, match="read-only and admin"):
        TokenStore(store).create("odd", Scopes(read_only=True, admin=True))
    assert TokenStore(store).list() == []
    store.close()
    assert not Scopes(read_only=True, admin=True).may_administer  # as stored by an older version
    assert Scopes(admin=True).may_administer and not Scopes().may_administer


def test_expiry_uses_the_injected_clock(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    now = [1_000_000.0]
    tokens = TokenStore(store, clock=lambda: now[0])
    token, secret = tokens.create("guest", expires=now[0] + 3600)
    assert tokens.verify(secret) is not None and tokens.inactive([token.id]) == set()
    now[0] += 3600
    assert tokens.verify(secret) is None and tokens.inactive([token.id, "gone"]) == {token.id, "gone"}
    assert tokens.list()[0].expires == token.expires
    store.close()


def test_a_revocation_by_another_connection_is_seen_by_the_next_verify(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    tokens = TokenStore(store)
    told: list[int] = []
    tokens.on_change(lambda: told.append(1))
    token, secret = tokens.create("phone")
    assert tokens.verify(secret) is not None  # cached now
    other = RegistryStore(tmp_path / "r.db")  # as `qilu-hub token revoke` opens it, in another process
    assert TokenStore(other).revoke(token.id)
    other.close()
    assert tokens.verify(secret) is None  # no grace period
    assert told == [1]
    assert not tokens.sync()  # seen once
    _, second = tokens.create("tablet")
    assert tokens.verify(second) is not None
    tokens.revoke(tokens.list()[1].id)
    assert told == [1, 1] and tokens.verify(second) is None
    store.close()
