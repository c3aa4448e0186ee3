"""The CoinStats API as data: endpoint catalog, request builders, response classification, retry policy.

Nothing here imports ``requests`` or ``aiohttp``; transports live in :mod:`.transport` (sync) and
:mod:`.async_transport` (deferrable), and both use the same builders, classifier and retry policy.
"""
