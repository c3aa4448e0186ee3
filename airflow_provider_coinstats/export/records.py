"""Records of the nested answers: one per row the ``defi`` and ``snapshot_items`` datasets export.

GET /portfolio/defi nests assets in investments in protocols, and a snapshot item nests coin
balances in a day; these split them into one record per row, keeping the parents the row repeats.

Example::

    positions = defi_positions(hook.get_portfolio_defi(pid))
    flatten("defi", positions[0], portfolio_id=pid, extracted_at=now)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_coinstats.export.values import as_list, as_mapping, dig


@dataclass(frozen=True)
class DefiPosition:
    """One asset of one investment of a GET /portfolio/defi answer: the item a ``defi`` row is made from.

    ``asset`` is ``None`` (and ``asset_index`` 0) for an investment that lists no assets, so its
    value still gets a row. Build them with :func:`defi_positions`.

    Example::

        positions = defi_positions(hook.get_portfolio_defi(pid))
        flatten("defi", positions[0], portfolio_id=pid, extracted_at=now)
    """

    protocol: Mapping[str, Any]
    investment: Mapping[str, Any]
    asset: Mapping[str, Any] | None
    asset_index: int


@dataclass(frozen=True)
class SnapshotBalance:
    """One coin balance of one daily snapshot: the item a ``snapshot_items`` row is made from.

    Build them with :func:`snapshot_balances`.

    Example::

        for snapshot in hook.iter_portfolio_snapshot_items(pid):
            for balance in snapshot_balances(snapshot):
                flatten("snapshot_items", balance, portfolio_id=pid, extracted_at=now)
    """

    snapshot: Mapping[str, Any]
    balance: Mapping[str, Any]


def defi_positions(payload: Any) -> list[DefiPosition]:
    """Split a GET /portfolio/defi answer (``{totalAssets, protocols}``) into per-asset records.

    Protocols without investments give no record (they hold nothing to report).

    Example::

        defi_positions({"protocols": [{"id": "lido", "investments": [{"id": "st", "assets": [a]}]}]})
        # -> [DefiPosition(protocol={...}, investment={...}, asset=a, asset_index=0)]
    """
    out: list[DefiPosition] = []
    for protocol in as_list(dig(payload, "protocols")):
        protocol_map = as_mapping(protocol)
        for investment in as_list(protocol_map.get("investments")):
            investment_map = as_mapping(investment)
            assets = [as_mapping(a) for a in as_list(investment_map.get("assets"))]
            if not assets:
                out.append(DefiPosition(protocol_map, investment_map, None, 0))
            out.extend(DefiPosition(protocol_map, investment_map, a, i) for i, a in enumerate(assets))
    return out


def snapshot_balances(item: Any) -> list[SnapshotBalance]:
    """Split one GET /portfolio/snapshot/items item into per-coin records.

    A day with no coin balances gives no record.

    Example::

        snapshot_balances({"date": "2025-01-01T00:00:00.000Z", "coinBalances": [b1, b2]})
        # -> [SnapshotBalance(snapshot={...}, balance=b1), SnapshotBalance(snapshot={...}, balance=b2)]
    """
    snapshot = as_mapping(item)
    return [SnapshotBalance(snapshot, as_mapping(b)) for b in as_list(snapshot.get("coinBalances"))]
