"""The deals already surfaced, in SQLite, so that a later scan reports none twice; and which of them a webhook has
not yet received, so that a receiver that was down gets them on a later scan."""

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from pricer.errors import PricerError
from pricer.storage import cache_dir

SCHEMA = """CREATE TABLE IF NOT EXISTS deals (
    key TEXT PRIMARY KEY, title TEXT, url TEXT, offer REAL, estimate REAL, discount REAL,
    first_seen REAL, notified INTEGER DEFAULT 0, record TEXT)"""


def default_memory() -> Path:
    return cache_dir() / "deals.sqlite"


class DealMemory:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._db() as db:
                db.execute(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise PricerError(f"{self.path}: not a pricer deal memory ({e})") from None

    def _db(self):
        return closing(sqlite3.connect(self.path, timeout=30, isolation_level=None))

    def unseen(self, deals: list) -> list:
        """The deals whose key is not remembered yet, in the order given."""
        with self._db() as db:
            seen = {row[0] for row in db.execute("SELECT key FROM deals")}
        return [d for d in deals if d.key not in seen]

    def remember(self, deals: list, notify: bool) -> None:
        """Store the deals in one transaction; with notify, each waits for the webhook until marked sent."""
        import json

        rows = [(d.key, d.offer.title, d.offer.url, d.offer.price, d.estimate, d.discount, time.time(),
                 0 if notify else 1, json.dumps(d.to_dict())) for d in deals]
        with self._db() as db:
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO deals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")

    def waiting(self) -> list[tuple[str, dict]]:
        """(key, deal as JSON) of remembered deals that no webhook has received yet, oldest first."""
        import json

        with self._db() as db:
            rows = db.execute("SELECT key, record FROM deals WHERE notified = 0 ORDER BY first_seen").fetchall()
        return [(key, json.loads(record)) for key, record in rows]

    def mark_sent(self, key: str) -> None:
        with self._db() as db:
            db.execute("UPDATE deals SET notified = 1 WHERE key = ?", (key,))
