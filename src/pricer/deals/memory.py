"""The deals already surfaced, in SQLite: an outbox, so that every deal is shown once and reaches a webhook once, even
with two finders on one memory or a finder killed half-way.

A scan claims its new deals in one write transaction (`BEGIN IMMEDIATE`: two processes cannot both claim a deal), shows
them, and only then marks them shown; the webhook's queue is claimed the same way and each deal marked sent only once
the receiver answered. A claim made by a process that has died is taken over by the next scan, so a deal is shown
late rather than never; a send cut short is sent again with the same Idempotency-Key, which a receiver can drop.
"""

import contextlib
import json
import os
import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from pricer.errors import PricerError
from pricer.storage import cache_dir

SCHEMA = """CREATE TABLE IF NOT EXISTS deals (
    key TEXT PRIMARY KEY, title TEXT, url TEXT, offer REAL, estimate REAL, discount REAL,
    first_seen REAL, notified INTEGER DEFAULT 0, record TEXT)"""
# Added since the first version; a memory written before has them added with every deal counted as shown.
COLUMNS = {"shown": "INTEGER DEFAULT 1", "owner": "TEXT DEFAULT ''", "claimed_at": "REAL DEFAULT 0"}

FOREIGN_CLAIM_EXPIRES = 600  # seconds after which a claim made on another host is taken over


def default_memory() -> Path:
    return cache_dir() / "deals.sqlite"


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def still_running(owner: str, claimed_at: float) -> bool:
    """Whether the process that made a claim may still be at work on it."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return time.time() - claimed_at < FOREIGN_CLAIM_EXPIRES
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True


class DealMemory:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.me = this_process()
        try:
            with self._db() as db:
                db.execute(SCHEMA)
                have = {row[1] for row in db.execute("PRAGMA table_info(deals)")}
                for name, kind in COLUMNS.items():
                    if name not in have:
                        db.execute(f"ALTER TABLE deals ADD COLUMN {name} {kind}")
        except sqlite3.DatabaseError as e:
            raise PricerError(f"{self.path}: not a pricer deal memory ({e})") from None

    def _db(self):
        return closing(sqlite3.connect(self.path, timeout=30, isolation_level=None))

    @contextlib.contextmanager
    def _claiming(self):
        """A write transaction taken at its start (BEGIN IMMEDIATE), so no other process reads what it then claims."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def claim(self, deals: list, notify: bool) -> list:
        """The deals this process is to show, in the order given: those never seen, and those whose claimer died
        before showing them. With notify, each also waits for the webhook until marked sent."""
        claimed, now = [], time.time()
        with self._claiming() as db:
            for d in deals:
                row = db.execute("SELECT shown, owner, claimed_at FROM deals WHERE key = ?", (d.key,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO deals (key, title, url, offer, estimate, discount, first_seen, notified, "
                               "record, shown, owner, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                               (d.key, d.offer.title, d.offer.url, d.offer.price, d.estimate, d.discount, now,
                                0 if notify else 1, json.dumps(d.to_dict()), self.me, now))
                elif row[0] == 0 and row[1] != self.me and not still_running(row[1], row[2]):
                    db.execute("UPDATE deals SET owner = ?, claimed_at = ? WHERE key = ?", (self.me, now, d.key))
                else:
                    continue
                claimed.append(d)
        return claimed

    def mark_shown(self, deals: list) -> None:
        with self._db() as db:
            db.executemany("UPDATE deals SET shown = 1 WHERE key = ?", [(d.key,) for d in deals])

    def claim_waiting(self) -> list[tuple[str, dict]]:
        """(key, deal as JSON) of the deals no webhook has received yet and no live process is sending, oldest
        first; claimed for this process."""
        now = time.time()
        with self._claiming() as db:
            rows = db.execute("SELECT key, record, owner, claimed_at FROM deals WHERE notified = 0 "
                              "ORDER BY first_seen").fetchall()
            mine = [(key, record) for key, record, owner, at in rows if owner == self.me or not still_running(owner, at)]
            db.executemany("UPDATE deals SET owner = ?, claimed_at = ? WHERE key = ?",
                           [(self.me, now, key) for key, _ in mine])
        return [(key, json.loads(record)) for key, record in mine]

    def mark_sent(self, key: str) -> None:
        with self._db() as db:
            db.execute("UPDATE deals SET notified = 1 WHERE key = ?", (key,))
