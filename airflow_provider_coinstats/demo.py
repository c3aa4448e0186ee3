"""``make demo``: the CoinStats sandbox plus a hook round trip, printed for a person.

Starts the sandbox on a free loopback port, points ``coinstats_default`` at it, connects a wallet,
waits for the sync (CoinStats answers 409 until then), and reads holdings and value.

Run: ``python -m airflow_provider_coinstats.demo``
"""

from __future__ import annotations

import os
import time

from airflow_provider_coinstats.exceptions import CoinStatsNotSyncedError

WALLET = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"


def main() -> int:
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
    from airflow_provider_coinstats.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(sync_polls=3)) as server:
        os.environ["AIRFLOW_CONN_COINSTATS_DEFAULT"] = server.airflow_connection()
        print(f"CoinStats sandbox at {server.url}")
        hook = CoinStatsHook()
        ok, message = hook.test_connection()
        print(f"connection check     : {'ok' if ok else 'FAILED'} ({message})")
        chains = hook.get_blockchains()
        print(f"supported blockchains: {len(chains)} ({', '.join(c['connectionId'] for c in chains[:5])}, ...)")

        result = hook.connect_wallet(WALLET, "ethereum", name="Demo wallet")
        print(f"connected wallet     : portfolioId={result.portfolio_id} status={result.status}")

        started, not_yet = time.monotonic(), 0
        while True:
            try:
                value = hook.get_portfolio_value(result.portfolio_id)
                break
            except CoinStatsNotSyncedError:
                not_yet += 1  # 409 "Transactions not synced": not yet, poll again
                time.sleep(0.2)
        print(f"sync wait            : {not_yet} x 409 'not synced' in {time.monotonic() - started:.1f} s")

        coins = hook.get_portfolio_coins(result.portfolio_id)
        print(f"total value          : {value.get('totalValue', 0):,.2f} USD")
        print("holdings:")
        for item in sorted(coins, key=lambda c: -(c.get("count", 0) * c.get("price", {}).get("USD", 0)))[:8]:
            coin = item.get("coin", {})
            usd = item.get("count", 0) * item.get("price", {}).get("USD", 0)
            print(f"  {coin.get('symbol', '?'):>6} {item.get('count', 0):>16,.6f}  {usd:>14,.2f} USD")
        print(f"credits spent        : {hook.credits_spent} (sandbox ledger: {server.state.credits_used()})")
        hook.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
