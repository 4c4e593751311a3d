-- The set-based FIFO of SPEC §6 over the priced legs of each (wallet, token).
-- Level 1: cumulative bought B, sold Q, cost C, per-group time origin t0.
-- Level 2: the same before each leg, the running minimum of B - Q, G's running sum.
-- Then M = Q + min(0, running min of B - Q), the quantity taken from the buy queue,
-- after (m_cum) and before (m_prev) each leg; m_prev equals the previous leg's m_cum exactly.
CREATE OR REPLACE TEMP TABLE st_fifo_legs AS
WITH legs AS (
    SELECT
        wallet, token, is_buy, qty, value, t, tx_hash, ins_index, inner_ins_index,
        CASE WHEN is_buy THEN qty ELSE 0.0 END AS bq,
        CASE WHEN is_buy THEN 0.0 ELSE qty END AS sq,
        CASE WHEN is_buy THEN value ELSE 0.0 END AS bv
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
                 ROWS UNBOUNDED PRECEDING)
),
level2 AS (
    SELECT
        *,
        b_cum - q_cum AS d,
        min(b_cum - q_cum) OVER w AS rm,
        lag(b_cum - q_cum) OVER w AS d_prev,
        min(b_cum - q_cum) OVER wx AS rm_prev,
        coalesce(lag(b_cum) OVER w, 0.0) AS b_prev,
        lag(q_cum) OVER w AS q_prev,
        coalesce(lag(c_cum) OVER w, 0.0) AS c_prev,
        coalesce(sum(bq * (t - t0)) OVER wx, 0.0) AS g_prev
    FROM level1
    WINDOW
        w AS (PARTITION BY wallet, token ORDER BY t, tx_hash, ins_index, inner_ins_index
              ROWS UNBOUNDED PRECEDING),
        wx AS (PARTITION BY wallet, token ORDER BY t, tx_hash, ins_index, inner_ins_index
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
-- When the clamp binds at this very leg the queue is empty and M is exactly B: taking B
-- itself avoids the cancellation of Q + (B - Q) after large unmatched sells.
SELECT
    wallet, token, is_buy, qty, value, t, t0, bq, bv, b_cum, b_prev, c_prev, g_prev,
    CASE WHEN rm < 0 AND d <= rm THEN b_cum ELSE q_cum + least(0.0, rm) END AS m_cum,
    CASE
        WHEN q_prev IS NULL THEN 0.0
        WHEN rm_prev < 0 AND d_prev <= rm_prev THEN b_prev
        ELSE q_prev + least(0.0, rm_prev)
    END AS m_prev
FROM level2;

-- Each sell consumes [m_prev, m_cum] of the buy queue. F(x) and G(x) by as-of lookup of the
-- last lot starting below x (lots of zero float width are skipped: they cannot contain x).
CREATE OR REPLACE TEMP TABLE st_sells AS
WITH lots AS (
    SELECT wallet, token, b_prev AS start_qty, c_prev, g_prev,
           value / qty AS unit_cost, CAST(t - t0 AS DOUBLE) AS age
    FROM st_fifo_legs
    WHERE is_buy AND b_cum > b_prev
),
sells AS (
    SELECT wallet, token, qty, value, t, t0, m_cum, m_prev
    FROM st_fifo_legs
    WHERE NOT is_buy
),
bounds AS (
    SELECT
        s.*,
        coalesce(hi.c_prev + (s.m_cum - hi.start_qty) * hi.unit_cost, 0.0)
            - coalesce(lo.c_prev + (s.m_prev - lo.start_qty) * lo.unit_cost, 0.0) AS cost,
        coalesce(hi.g_prev + (s.m_cum - hi.start_qty) * hi.age, 0.0)
            - coalesce(lo.g_prev + (s.m_prev - lo.start_qty) * lo.age, 0.0) AS g_delta,
        s.m_cum - s.m_prev AS matched
    FROM sells s
    ASOF LEFT JOIN lots hi
        ON s.wallet = hi.wallet AND s.token = hi.token AND s.m_cum > hi.start_qty
    ASOF LEFT JOIN lots lo
        ON s.wallet = lo.wallet AND s.token = lo.token AND s.m_prev > lo.start_qty
)
SELECT
    wallet, token, qty, value, matched, cost,
    value * matched / qty AS proceeds,
    value * matched / qty - cost AS pnl,
    CAST(t - t0 AS DOUBLE) * matched - g_delta AS held_seconds,
    matched > 1e-9 * qty AS counts,
    matched > 1e-9 * qty AND value * matched / qty - cost > 1e-9 * (value * matched / qty) AS wins
FROM bounds;
