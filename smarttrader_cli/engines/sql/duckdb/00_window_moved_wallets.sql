-- Wallets whose windows lost or gained a trade because the windows' end moved (docs/pnl.md
-- §7): a trade in one of the spans a window edge swept over ({{bands}}, from
-- pnl_common.window_bands). Portable SQL: the Spark engine can run it too.
SELECT DISTINCT wallet_address
FROM bronze.wallet_trades
WHERE {{bands}}
