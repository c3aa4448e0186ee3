"""File renderings stay byte for byte what the standard library wrote: the fast paths change no output.

JSON Lines are encoded with msgspec; the test compares it with ``json.dumps(ensure_ascii=False,
separators=(",", ":"))`` over every Unicode scalar value and over real sandbox rows of every
dataset. Decimals are written with ``str`` where that has no exponent; the test compares with
``format(d, "f")`` over a million values.
"""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_coinstats.export import iter_rows, to_jsonable
from airflow_provider_coinstats.export.columns import DATASETS
from airflow_provider_coinstats.export.render import jsonl_encoder
from airflow_provider_coinstats.export.values import iso_z, plain_digits, remember_last
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from tests.export.test_flatteners import CONNECTIONS, sandbox_answers

STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def test_jsonl_lines_match_the_standard_library_for_every_character() -> None:
    characters = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    row = {"all": characters, "one": "\x7f\u2028\u2029\ufeff", "n": -12345678901234567890, "t": True, "z": None}
    assert jsonl_encoder()(row) == STDLIB(row)
    # One value per character too: escapes depend on what surrounds them in neither encoder.
    line = jsonl_encoder()
    assert [line({"c": chr(c)}) for c in range(0x800)] == [STDLIB({"c": chr(c)}) for c in range(0x800)]


@pytest.mark.parametrize("connection", ["ethereum", "binance"])
def test_jsonl_lines_of_sandbox_rows_match_the_standard_library(coinstats_conn: Any, connection: str) -> None:
    coinstats_conn.state.configure(sync_polls=0)
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    line = jsonl_encoder()
    with CoinStatsHook() as hook:
        pid = CONNECTIONS[connection](hook)
        answers = sandbox_answers(hook, pid)
    for dataset in DATASETS:
        rows = list(iter_rows(dataset, answers[dataset], portfolio_id=pid, extracted_at=now))
        assert rows
        assert [line(row) for row in rows] == [STDLIB(to_jsonable(row)) for row in rows]
        assert all('"extracted_at":"2026-01-02T03:04:05.678000Z"' in line(row) for row in rows)


def test_plain_digits_match_format_f() -> None:
    rng = random.Random(3)
    values = [Decimal(x) for x in ("0", "-0", "0.00", "0E-8", "1E+2", "1E-10", "1.5E+3", "1.50", "NaN", "-Infinity")]
    for _ in range(500_000):
        values.append(Decimal(repr(rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30))))
        values.append(Decimal(rng.randint(-(10**20), 10**20)).scaleb(rng.randint(-30, 10)))
    assert [plain_digits(d) for d in values] == [format(d, "f") for d in values]
    assert plain_digits(Decimal("1E-10")) == "0.0000000001"


def test_the_extracted_at_text_is_reused_only_for_the_same_moment() -> None:
    calls: list[datetime] = []

    def render(moment: datetime) -> str:
        calls.append(moment)
        return iso_z(moment)

    text = remember_last(render)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    equal_but_other = datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert [text(first), text(first), text(equal_but_other), text(first)] == ["2026-01-01T00:00:00Z"] * 4
    assert calls == [first, equal_but_other, first]  # compared by identity, not equality


def test_rows_of_two_runs_rendered_at_once_keep_their_own_extracted_at() -> None:
    """Two exports in two threads of one worker share the module's cached text: each gets its own."""
    moments = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, 12, 30, tzinfo=UTC)]
    wrong: list[str] = []

    def render_many(moment: datetime) -> None:
        expected = iso_z(moment)
        for _ in range(20_000):
            if to_jsonable({"extracted_at": moment})["extracted_at"] != expected:
                wrong.append(expected)

    threads = [threading.Thread(target=render_many, args=(moment,)) for moment in moments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
