"""Fixtures the transfer tests share with the SQL export tests: ``portfolio`` and ``warehouse``.

``warehouse`` runs a test on every real database the suite has (SQLite, PostgreSQL, MariaDB);
a test module that needs another warehouse defines its own fixture of that name.
"""

from __future__ import annotations

from tests.export.conftest import portfolio, warehouse

__all__ = ["portfolio", "warehouse"]
