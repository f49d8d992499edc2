import time
from pathlib import Path

from hub.storage import RegistryStore
from hub.tokens import Scopes, TokenStore


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
