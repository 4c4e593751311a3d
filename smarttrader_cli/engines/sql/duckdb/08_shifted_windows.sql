-- silver.wallet_pnl_windows rows of the wallets a run did not recompute, with the bounds
-- of the windows ending at the new as_of (their numbers stand: no trade of theirs crossed
-- an edge and no price moved under an open position, or they would be recomputed).
WITH windows AS (
{{windows_cte}}
)
SELECT {{columns}}
FROM silver.wallet_pnl_windows p
JOIN windows w ON p."window" = w.window_name
WHERE p.wallet_address NOT IN (SELECT wallet FROM {{recomputed}})
