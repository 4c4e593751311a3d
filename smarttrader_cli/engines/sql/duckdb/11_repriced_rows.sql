-- Open positions whose token's latest price moved, of wallets the run does not recompute
-- (docs/pnl.md §7): no FIFO, their stored rows re-valued with token_rows.sql's expressions
-- on the stored open quantity and cost (the same doubles, so the same results).
-- st_moved_prices: (token, price) of the tokens whose price moved; st_stored_pnl: the rows of
-- silver.wallet_pnl as the run found them.
CREATE OR REPLACE TEMP TABLE st_repriced AS
SELECT
    p.wallet_address,
    p.token_address,
    CASE WHEN p.current_position_tokens = 0 THEN 0E0
         ELSE coalesce(p.current_position_tokens * m.price, 0E0) END AS open_value
FROM st_stored_pnl p
JOIN st_moved_prices m ON m.token = p.token_address
WHERE p.token_address <> 'ALL_TOKENS'
  AND p.current_position_tokens <> 0
  AND p.wallet_address NOT IN (SELECT wallet FROM {{recomputed}});

-- The re-valued token rows and the ALL_TOKENS rows of their wallets (§4: sums of every
-- token row of the wallet, re-valued or not).
CREATE OR REPLACE TEMP TABLE st_repriced_pnl AS
WITH tokens AS (
    SELECT
        p.* EXCLUDE (calculated_at, run_id),
        r.token_address IS NOT NULL AS moved,
        coalesce(r.open_value, p.current_position_value) AS open_value,
        p.current_position_cost_basis AS open_cost
    FROM st_stored_pnl p
    LEFT JOIN st_repriced r
        ON r.wallet_address = p.wallet_address AND r.token_address = p.token_address
    WHERE p.token_address <> 'ALL_TOKENS'
      AND p.wallet_address IN (SELECT wallet_address FROM st_repriced)
),
valued AS (
    SELECT
        * EXCLUDE (moved, open_value, open_cost)
          REPLACE (
            open_value - open_cost AS unrealized_pnl,
            realized_pnl + open_value - open_cost AS total_pnl,
            CASE WHEN total_bought > 0
                THEN (realized_pnl + open_value - open_cost) / total_bought END AS roi,
            open_value AS current_position_value
          ),
        moved
    FROM tokens
),
portfolio AS (
    SELECT
        wallet_address,
        sum(unrealized_pnl) AS unrealized_pnl,
        sum(total_pnl) AS total_pnl,
        sum(current_position_value) AS current_position_value
    FROM valued
    GROUP BY wallet_address
)
SELECT * EXCLUDE (moved) FROM valued WHERE moved
UNION ALL BY NAME
SELECT
    a.* EXCLUDE (calculated_at, run_id)
        REPLACE (
            s.unrealized_pnl AS unrealized_pnl,
            s.total_pnl AS total_pnl,
            CASE WHEN a.total_bought > 0 THEN s.total_pnl / a.total_bought END AS roi,
            s.current_position_value AS current_position_value
        )
FROM st_stored_pnl a
JOIN portfolio s ON s.wallet_address = a.wallet_address
WHERE a.token_address = 'ALL_TOKENS';
