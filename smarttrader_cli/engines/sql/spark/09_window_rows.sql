-- Token window rows plus one ALL_TOKENS row per wallet and window; the portfolio rows are
-- shared with DuckDB (sql/shared/window_portfolio_rows.sql), in the token rows' column
-- order (UNION ALL matches columns by position here).
WITH windows AS (
{{windows_cte}}
),
wallets AS (
    SELECT DISTINCT wallet AS wallet_address FROM {{trades}}
)
SELECT * FROM {{window_token_rows}}
UNION ALL
{{include:window_portfolio_rows.sql}}
