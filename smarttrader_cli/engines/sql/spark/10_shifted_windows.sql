-- silver.wallet_pnl_windows rows of the wallets a run did not recompute, with the bounds of
-- the windows ending at the new as_of (sql/duckdb/08_shifted_windows.sql; their numbers
-- stand: no trade of theirs crossed an edge and no price moved under an open position, or
-- they would be recomputed).
WITH windows AS (
{{windows_cte}}
)
SELECT {{columns}}
FROM silver_wallet_pnl_windows p
JOIN windows w ON p.`window` = w.window_name
LEFT ANTI JOIN {{recomputed}} r ON r.wallet = p.wallet_address
