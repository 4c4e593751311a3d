-- Wallets an incremental run must recompute (docs/pnl.md §7): new to silver, with trades
-- fetched after their calculated_at, or holding a token re-priced after their calculated_at.
WITH bronze_wallets AS (
    SELECT wallet_address, max(fetched_at) AS fetched_at
    FROM bronze.wallet_trades
    GROUP BY wallet_address
),
silver_wallets AS (
    SELECT wallet_address, calculated_at
    FROM silver.wallet_pnl
    WHERE token_address = 'ALL_TOKENS'
),
repriced AS (
    SELECT DISTINCT p.wallet_address
    FROM silver.wallet_pnl p
    JOIN bronze.token_metrics m ON m.token_address = p.token_address
    WHERE p.token_address <> 'ALL_TOKENS'
      AND p.current_position_tokens > 0
      AND m.snapshot_at > p.calculated_at
)
SELECT b.wallet_address
FROM bronze_wallets b
LEFT JOIN silver_wallets s ON s.wallet_address = b.wallet_address
WHERE s.calculated_at IS NULL OR coalesce(b.fetched_at > s.calculated_at, FALSE)
UNION
SELECT wallet_address FROM repriced
