-- Open positions whose token's latest price moved, of wallets the run does not recompute
-- (docs/pnl.md §7): no FIFO, their stored rows re-valued with token_rows.sql's expressions
-- on the stored open quantity and cost (the same doubles, so the same results).
-- st_moved_prices: (token, price) of the tokens whose price moved.
CREATE OR REPLACE TEMP TABLE st_repriced AS
SELECT
    p.wallet_address,
    p.token_address,
    CASE WHEN p.current_position_tokens = 0 THEN 0E0
         ELSE coalesce(p.current_position_tokens * m.price, 0E0) END AS open_value
FROM silver.wallet_pnl p
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
    FROM silver.wallet_pnl p
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
FROM silver.wallet_pnl a
JOIN portfolio s ON s.wallet_address = a.wallet_address
WHERE a.token_address = 'ALL_TOKENS';

-- Their window rows (§8): the open position is the same in every window; ROI's capital is
-- window_rows.sql's (all: everything bought; else the window's matched cost + open cost),
-- and the ALL_TOKENS rows sum them as window_portfolio_rows.sql does. Bounds are the
-- run's windows (unchanged unless as_of moved).
CREATE OR REPLACE TEMP TABLE st_repriced_windows AS
WITH windows AS (
{{windows_cte}}
),
tokens AS (
    SELECT
        w.* EXCLUDE (calculated_at, run_id),
        v.current_position_value AS open_value,
        v.current_position_cost_basis AS open_cost,
        v.total_bought AS all_bought,
        r.token_address IS NOT NULL AS moved
    FROM silver.wallet_pnl_windows w
    JOIN st_repriced_pnl v
        ON v.wallet_address = w.wallet_address AND v.token_address = w.token_address
    LEFT JOIN st_repriced r
        ON r.wallet_address = w.wallet_address AND r.token_address = w.token_address
    WHERE w.token_address <> 'ALL_TOKENS'
    UNION ALL BY NAME
    SELECT
        w.* EXCLUDE (calculated_at, run_id),
        p.current_position_value AS open_value,
        p.current_position_cost_basis AS open_cost,
        p.total_bought AS all_bought,
        FALSE AS moved
    FROM silver.wallet_pnl_windows w
    JOIN silver.wallet_pnl p
        ON p.wallet_address = w.wallet_address AND p.token_address = w.token_address
    WHERE w.token_address <> 'ALL_TOKENS'
      AND w.wallet_address IN (SELECT wallet_address FROM st_repriced)
      AND NOT EXISTS (
          SELECT 1 FROM st_repriced_pnl v
          WHERE v.wallet_address = w.wallet_address AND v.token_address = w.token_address
      )
),
valued AS (
    SELECT
        * EXCLUDE (open_value, open_cost, all_bought)
          REPLACE (
            open_value - open_cost AS unrealized_pnl,
            realized_pnl + open_value - open_cost AS total_pnl,
            CASE WHEN capital > 1E-9 * all_bought
                THEN (realized_pnl + open_value - open_cost) / capital END AS roi
          ),
        all_bought
    FROM (
        SELECT *,
               CASE WHEN window_start IS NULL THEN all_bought
                    ELSE matched_cost + open_cost END AS capital
        FROM tokens
    )
),
portfolio AS (
    SELECT
        wallet_address,
        "window",
        sum(unrealized_pnl) AS unrealized_pnl,
        sum(total_pnl) AS total_pnl,
        sum(capital) AS capital,
        sum(all_bought) AS all_bought
    FROM valued
    GROUP BY wallet_address, "window"
),
changed AS (
    SELECT * EXCLUDE (moved, capital, all_bought) FROM valued WHERE moved
    UNION ALL BY NAME
    SELECT
        a.* EXCLUDE (calculated_at, run_id)
            REPLACE (
                s.unrealized_pnl AS unrealized_pnl,
                s.total_pnl AS total_pnl,
                CASE WHEN s.capital > 1E-9 * s.all_bought
                    THEN s.total_pnl / s.capital END AS roi
            )
    FROM silver.wallet_pnl_windows a
    JOIN portfolio s ON s.wallet_address = a.wallet_address AND s."window" = a."window"
    WHERE a.token_address = 'ALL_TOKENS'
)
SELECT
    c.* EXCLUDE ("window", window_start, window_end),
    c."window" AS window_name,
    to_timestamp(b.start_t) AS window_start,
    to_timestamp(b.end_t) AS window_end
FROM changed c
JOIN windows b ON b.window_name = c."window";
