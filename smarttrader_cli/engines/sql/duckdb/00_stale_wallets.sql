-- Wallets an incremental run must recompute (docs/pnl.md §7): new to silver, with trades
-- fetched after their calculated_at, or holding a token re-priced after their calculated_at
-- (a newer token_metrics snapshot, or a newer trade of that token by any wallet, which can
-- move the fallback price). Portable SQL: the Spark engine runs it too.
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
token_news AS (
    SELECT token_address, max(snapshot_at) AS changed_at
    FROM bronze.token_metrics
    GROUP BY token_address
    UNION ALL
    SELECT token_address, max(fetched_at) AS changed_at
    FROM (
        SELECT from_token_address AS token_address, fetched_at FROM bronze.wallet_trades
        UNION ALL
        SELECT to_token_address AS token_address, fetched_at FROM bronze.wallet_trades
    ) sides
    GROUP BY token_address
),
repriced AS (
    SELECT DISTINCT p.wallet_address
    FROM silver.wallet_pnl p
    JOIN token_news n ON n.token_address = p.token_address
    WHERE p.token_address <> 'ALL_TOKENS'
      AND p.current_position_tokens > 0
      AND n.changed_at > p.calculated_at
)
SELECT b.wallet_address
FROM bronze_wallets b
LEFT JOIN silver_wallets s ON s.wallet_address = b.wallet_address
WHERE s.calculated_at IS NULL OR coalesce(b.fetched_at > s.calculated_at, FALSE)
UNION
SELECT wallet_address FROM repriced
