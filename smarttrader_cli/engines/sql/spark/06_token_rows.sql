-- One row per (wallet, token) with any leg (§3). The metrics are shared with DuckDB
-- (sql/shared/token_rows.sql); the totals come from the FIFO legs and the sells' totals.
WITH groups AS (
    SELECT wallet, token, count(*) FILTER (WHERE value IS NULL) AS unpriced
    FROM {{legs}}
    GROUP BY wallet, token
    HAVING count(*) FILTER (WHERE value IS NULL OR value >= {{min_leg_usd}}) > 0
),
leg_agg AS (
    SELECT
        wallet, token,
        count(*) FILTER (WHERE is_buy) AS buy_count,
        count(*) FILTER (WHERE NOT is_buy) AS sell_count,
        sum(bv) AS total_bought,
        sum(bq) AS bought_qty,
        max(m_cum) AS m_last,
        min(t) AS first_t,
        max(t) AS last_t
    FROM {{fifo_legs}}
    GROUP BY wallet, token
),
sell_agg AS (
    SELECT * FROM {{sell_totals}} WHERE bucket IS NULL
),
joined AS (
    SELECT
        g.wallet, g.token, g.unpriced,
        coalesce(l.buy_count, 0) AS buy_count,
        coalesce(l.sell_count, 0) AS sell_count,
        coalesce(l.total_bought, 0.0D) AS total_bought,
        coalesce(s.total_sold, 0.0D) AS total_sold,
        coalesce(s.realized_pnl, 0.0D) AS realized_pnl,
        coalesce(s.matched_cost, 0.0D) AS matched_cost,
        coalesce(s.matched_qty, 0.0D) AS matched_qty,
        s.held_seconds,
        coalesce(s.unmatched_sell_qty, 0.0D) AS unmatched_sell_qty,
        coalesce(s.counted_sells, 0) AS counted_sells,
        coalesce(s.winning_sells, 0) AS winning_sells,
        coalesce(l.bought_qty - greatest(l.m_last, 0.0D), 0.0D) AS open_qty,
        l.first_t, l.last_t,
        p.price
    FROM groups g
    LEFT JOIN leg_agg l ON g.wallet = l.wallet AND g.token = l.token
    LEFT JOIN sell_agg s ON g.wallet = s.wallet AND g.token = s.token
    LEFT JOIN {{prices}} p ON g.token = p.token
)
{{include:token_rows.sql}}
