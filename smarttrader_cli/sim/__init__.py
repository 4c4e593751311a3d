"""The offline market simulator: BirdEye and Helius endpoints on localhost, seeded.

- `sim.market`: `SimSettings` and the deterministic `Market` (tokens, some launched inside
  the history, wallets by role, holders, hourly prices; `truth()` and `labels()` = what
  was planted: smart, faded, bot, sniper, distributor, losing and retail wallets, pool,
  exchange and burn holders). `sim.accounts`: keypair wallets, program-derived pools.
- `sim.trades`: per-wallet swap histories, generated on demand; `sim.birdeye_items`
  renders them as seek_by_time items, with the quirks of real pages unless
  `SimSettings(quirks=False)`.
- `sim.birdeye_api`, `sim.price_api`, `sim.discovery_api`: the BirdEye endpoints (lists,
  holders, trades, current and historical prices, top traders, gainers).
- `sim.server`: the Starlette app; `run_in_thread(SimSettings(...))` returns a
  `RunningSim` with `base_url`, `market`, `stats()` and `stop()`.
- `sim.enhanced` (on a `sim.ledger`), `sim.webhooks`: Helius enhanced transactions built
  move by move, and `emit_webhooks(url, ...)`.
- `sim.truth`: `TruthLeg`, `birdeye_truth`, `helius_truth`: what every planted swap
  really traded, to check parsers against.
"""
