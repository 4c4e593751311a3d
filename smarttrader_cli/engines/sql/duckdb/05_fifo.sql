-- The set-based FIFO of SPEC §6 over the priced legs of each (wallet, token) of st_groups.
-- Level 1 (the one sort on the full leg order): position rn, cumulative bought B, sold Q,
-- cost C, time origin t0.
-- Level 2 (integer keys g, rn): the same before each leg, the running minimum of B - Q,
-- G's running sum. Then M = Q + min(0, running min of B - Q), the quantity taken from the
-- buy queue after each leg (m_cum).
CREATE OR REPLACE TEMP TABLE st_fifo_legs AS
WITH legs AS (
    SELECT
        g, is_buy, qty, value, t, tx_hash, ins_index, inner_ins_index,
        CASE WHEN is_buy THEN qty ELSE 0.0 END AS bq,
        CASE WHEN is_buy THEN 0.0 ELSE qty END AS sq,
        CASE WHEN is_buy THEN value ELSE 0.0 END AS bv
    FROM {{legs_with_groups}}
    WHERE value IS NOT NULL AND value >= {{min_leg_usd}}
),
level1 AS (
    SELECT
        g, is_buy, qty, value, t, bq,
        row_number() OVER w AS rn,
        sum(bq) OVER w AS b_cum,
        sum(sq) OVER w AS q_cum,
        sum(bv) OVER w AS c_cum,
        first_value(t) OVER w AS t0
    FROM legs
    WINDOW w AS (PARTITION BY g ORDER BY t, tx_hash, ins_index, inner_ins_index
                 ROWS UNBOUNDED PRECEDING)
),
level2 AS (
    SELECT
        *,
        b_cum - q_cum AS d,
        min(b_cum - q_cum) OVER wx AS rm_prev,
        coalesce(lag(b_cum) OVER w, 0.0) AS b_prev,
        coalesce(lag(c_cum) OVER w, 0.0) AS c_prev,
        coalesce(sum(bq * (t - t0)) OVER wx, 0.0) AS g_prev
    FROM level1
    WINDOW
        w AS (PARTITION BY g ORDER BY rn ROWS UNBOUNDED PRECEDING),
        wx AS (PARTITION BY g ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
-- rm, the running minimum through this leg, is least(rm_prev, d): min is exact.
-- When the clamp binds at this very leg the queue is empty and M is exactly B: taking B
-- itself avoids the cancellation of Q + (B - Q) after large unmatched sells.
SELECT
    g, rn, is_buy, qty, value, t, t0, b_cum, b_prev, c_prev, g_prev,
    CASE
        WHEN d < 0 AND d <= coalesce(rm_prev, d) THEN b_cum
        ELSE q_cum + least(0.0, d, coalesce(rm_prev, d))
    END AS m_cum
FROM level2;

-- Sell k consumes [M_{k-1}, M_k] of the buy queue, M_{k-1} being the previous sell's m_cum
-- (0 for the first): F(M_k) and G(M_k) by as-of lookup of the last lot starting below M_k
-- (lots of zero float width are skipped: they cannot contain it), F(M_{k-1}) and G(M_{k-1})
-- carried over from the previous sell, so one lookup per sell.
CREATE OR REPLACE TEMP TABLE st_sells AS
WITH lots AS (
    SELECT g, b_prev AS start_qty, c_prev, g_prev,
           value / qty AS unit_cost, CAST(t - t0 AS DOUBLE) AS age
    FROM st_fifo_legs
    WHERE is_buy AND b_cum > b_prev
),
hi AS (
    SELECT
        s.g, s.rn, s.qty, s.value, s.t, s.t0, s.m_cum,
        l.start_qty AS lot_start, l.unit_cost AS lot_unit_cost, l.age AS lot_age,
        coalesce(l.c_prev + (s.m_cum - l.start_qty) * l.unit_cost, 0.0) AS f_cum,
        coalesce(l.g_prev + (s.m_cum - l.start_qty) * l.age, 0.0) AS g_cum
    FROM (SELECT * FROM st_fifo_legs WHERE NOT is_buy) s
    ASOF LEFT JOIN lots l ON s.g = l.g AND s.m_cum > l.start_qty
),
prev AS (
    SELECT
        *,
        coalesce(lag(m_cum) OVER w, 0.0) AS m_prev,
        coalesce(lag(f_cum) OVER w, 0.0) AS f_prev,
        coalesce(lag(g_cum) OVER w, 0.0) AS g_prev
    FROM hi
    WINDOW w AS (PARTITION BY g ORDER BY rn)
),
bounds AS (
    -- A slice within one lot (lower bound at or past the lot's start) is priced as FIFO
    -- takes it, slice × the lot's unit figures: a difference of two large cumulative
    -- sums would leave float noise that can turn a break-even sell into a "win".
    SELECT
        *,
        m_cum - m_prev AS matched,
        CASE WHEN m_prev >= lot_start THEN (m_cum - m_prev) * lot_unit_cost
             ELSE f_cum - f_prev END AS cost,
        CASE WHEN m_prev >= lot_start THEN (m_cum - m_prev) * lot_age
             ELSE g_cum - g_prev END AS g_delta
    FROM prev
)
SELECT
    g, qty, value, matched, cost, m_cum,
    value * matched / qty AS proceeds,
    value * matched / qty - cost AS pnl,
    CAST(t - t0 AS DOUBLE) * matched - g_delta AS held_seconds,
    matched > 1e-9 * qty AS counts,
    matched > 1e-9 * qty AND value * matched / qty - cost > 1e-9 * (value * matched / qty) AS wins
FROM bounds;
