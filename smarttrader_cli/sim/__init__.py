"""The offline market simulator: BirdEye and Helius endpoints on localhost, seeded.

- `sim.market`: `SimSettings` and the deterministic `Market` (tokens, wallets, holders,
  `truth()` = the planted smart, losing and bot wallets).
- `sim.trades`: per-wallet swap histories, generated on demand.
- `sim.server`: the Starlette app; `run_in_thread(SimSettings(...))` returns a
  `RunningSim` with `base_url`, `market`, `stats()` and `stop()`.
- `sim.webhooks`: Helius enhanced swap events and `emit_webhooks(url, ...)`.
"""
