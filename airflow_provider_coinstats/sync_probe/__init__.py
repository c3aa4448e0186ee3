"""Waiting for a portfolio's sync, shared by the sensor, the connect operators and the trigger.

CoinStats has no "sync finished" event; while a portfolio syncs, its data endpoints answer HTTP
409 "Transactions not synced". Every path that waits (the sensor in each mode, the connect
operators with ``wait_for_sync``, the trigger) goes through these modules, so they cannot drift:

- :mod:`.probe`: one look, a cheap data request through a hook, and what it says;
- :mod:`.outcomes`: the one outcome vocabulary, trigger events and the task outcome of each;
- :mod:`.floors`: the timing floors every waiting path shares and the defer timeout;
- :mod:`.deferral`: argument checks, check-first-then-defer and ``execute_complete``, shared by
  the sensor and both connect operators.

Nothing here imports ``requests`` or ``aiohttp`` at module level: DAG files import the sensor.
"""
