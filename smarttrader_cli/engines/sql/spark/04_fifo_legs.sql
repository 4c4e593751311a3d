-- The set-based FIFO of SPEC §6, as in sql/duckdb/05_fifo.sql (same columns, same formulas).
-- Each leg also gets its window bucket (the shortest PnL window holding it, docs/pnl.md §8).
WITH legs AS (
    SELECT
        wallet, token, is_buy, qty, value, t, tx_hash, ins_index, inner_ins_index,
        CASE WHEN is_buy THEN qty ELSE 0.0D END AS bq,
        CASE WHEN is_buy THEN 0.0D ELSE qty END AS sq,
        CASE WHEN is_buy THEN value ELSE 0.0D END AS bv
    FROM {{legs}}
    WHERE value IS NOT NULL AND value >= {{min_leg_usd}}
),
level1 AS (
    SELECT
        *,
        sum(bq) OVER w AS b_cum,
        sum(sq) OVER w AS q_cum,
        sum(bv) OVER w AS c_cum,
        first_value(t) OVER w AS t0
    FROM legs
    WINDOW w AS (PARTITION BY wallet, token ORDER BY t, tx_hash, ins_index, inner_ins_index
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
level2 AS (
    SELECT
        *,
        b_cum - q_cum AS d,
        min(b_cum - q_cum) OVER w AS rm,
        lag(b_cum - q_cum) OVER wo AS d_prev,
        min(b_cum - q_cum) OVER wx AS rm_prev,
        coalesce(lag(b_cum) OVER wo, 0.0D) AS b_prev,
        lag(q_cum) OVER wo AS q_prev,
        coalesce(lag(c_cum) OVER wo, 0.0D) AS c_prev,
        coalesce(sum(bq * (t - t0)) OVER wx, 0.0D) AS g_prev
    FROM level1
    WINDOW
        wo AS (PARTITION BY wallet, token ORDER BY t, tx_hash, ins_index, inner_ins_index),
        w AS (PARTITION BY wallet, token ORDER BY t, tx_hash, ins_index, inner_ins_index
              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
        wx AS (PARTITION BY wallet, token ORDER BY t, tx_hash, ins_index, inner_ins_index
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT
    wallet, token, is_buy, qty, value, t, tx_hash, ins_index, inner_ins_index,
    t0, bq, bv, b_cum, b_prev, c_prev, g_prev,
    {{leg_bucket}} AS bucket,
    CASE WHEN rm < 0 AND d <= rm THEN b_cum ELSE q_cum + least(0.0D, rm) END AS m_cum,
    CASE
        WHEN q_prev IS NULL THEN 0.0D
        WHEN rm_prev < 0 AND d_prev <= rm_prev THEN b_prev
        ELSE q_prev + least(0.0D, rm_prev)
    END AS m_prev
FROM level2
