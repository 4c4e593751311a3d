-- The set-based FIFO of SPEC §6 over the priced legs of each (wallet, token) of st_groups.
-- One window pass over every leg, the only sort on the full leg order: position rn,
-- cumulative bought B and sold Q. The cost C and G = Σ bought qty × (t - t0) only matter at
-- the buys, so they are summed over the buys alone, below (t0 = {{t_origin}} is one origin
-- for the whole run: held time is a difference of G, the origin cancels; it only keeps the
-- products small).
CREATE OR REPLACE TEMP TABLE st_fifo_legs AS
SELECT
    g, is_buy, qty, value, t,
    row_number() OVER w AS rn,
    sum(CASE WHEN is_buy THEN qty ELSE 0.0 END) OVER w AS b_cum,
    sum(CASE WHEN is_buy THEN 0.0 ELSE qty END) OVER w AS q_cum
FROM {{legs_with_groups}}
WHERE value IS NOT NULL AND value >= {{min_leg_usd}}
WINDOW w AS (PARTITION BY g ORDER BY t, tx_hash, ins_index, inner_ins_index
             ROWS UNBOUNDED PRECEDING);

-- The legs with their strings are not needed past here: at 10M trades they hold about as
-- much memory as the sells below, which would otherwise spill.
DROP TABLE {{legs}};

-- Lot j (a buy) spans [S_j, B_j] of the buy queue, S_j being the previous buy's B exactly
-- (B_j - qty would miss S_j by an ulp and misplace a slice that ends on a lot boundary);
-- F(S_j) and G(S_j) are the sums of cost and of qty × age over the buys before it (one
-- window over the buys, sharing its sort with that lag); lots of zero float width are
-- skipped (they cannot contain a bound). Sell k: M_k = Q_k + min(0, running min of B - Q
-- over the sells so far) (a buy never lowers B - Q, so the minimum over sells is the
-- minimum over all legs); where the clamp binds at this very sell the queue is empty and
-- M_k is B_k exactly, which avoids the cancellation of Q + (B - Q) after large unmatched
-- sells. F(M_k) and G(M_k) by an as-of lookup of the last lot starting below M_k; the
-- lower bound M_{k-1} with its F and G is the previous sell's (0 for the first).
CREATE OR REPLACE TEMP TABLE st_ledger_sells AS
WITH buys AS (
    SELECT g, b_cum, value / qty AS unit_cost, CAST(t - {{t_origin}} AS DOUBLE) AS age,
           coalesce(lag(b_cum) OVER w, 0.0) AS start_qty,
           coalesce(sum(value) OVER x, 0.0) AS c_prev,
           coalesce(sum(qty * CAST(t - {{t_origin}} AS DOUBLE)) OVER x, 0.0) AS g_prev
    FROM st_fifo_legs
    WHERE is_buy
    WINDOW w AS (PARTITION BY g ORDER BY rn),
           x AS (PARTITION BY g ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
lots AS (
    SELECT * FROM buys WHERE b_cum > start_qty
),
sells AS (
    SELECT g, rn, qty, value, t, b_cum, q_cum, b_cum - q_cum AS d,
           min(b_cum - q_cum) OVER (PARTITION BY g ORDER BY rn ROWS UNBOUNDED PRECEDING) AS rm
    FROM st_fifo_legs
    WHERE NOT is_buy
),
hi AS (
    SELECT
        s.g, s.rn, s.qty, s.value, s.t, s.m_cum,
        l.start_qty AS lot_start, l.unit_cost AS lot_unit_cost, l.age AS lot_age,
        coalesce(l.c_prev + (s.m_cum - l.start_qty) * l.unit_cost, 0.0) AS f_cum,
        coalesce(l.g_prev + (s.m_cum - l.start_qty) * l.age, 0.0) AS g_cum
    FROM (
        SELECT *, CASE WHEN d < 0 AND d = rm THEN b_cum ELSE q_cum + least(0.0, rm) END AS m_cum
        FROM sells
    ) s
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
),
per_sell AS (
    SELECT
        g, rn, t, qty, value, matched, cost, m_cum,
        {{leg_bucket}} AS bucket,
        value * matched / qty - cost AS pnl,
        CAST(t - {{t_origin}} AS DOUBLE) * matched - g_delta AS held_seconds,
        matched > 1e-9 * qty AS counts,
        matched > 1e-9 * qty AND value * matched / qty - cost > 1e-9 * (value * matched / qty)
            AS wins
    FROM bounds
)
-- Every sell's FIFO result is kept (the ledger, silver.wallet_pnl_ledger: later runs move
-- windows with it), and summed per group in one aggregation: its totals (the 'all' window,
-- silver.wallet_pnl) and for each finite window i the sums of the sells inside it (bucket,
-- the shortest window holding the sell, at most i; columns <name>_w<i>), so the windows
-- need no join per window (07_windows.sql).
SELECT * FROM per_sell;

CREATE OR REPLACE TEMP TABLE st_sell_totals AS
SELECT
    g,
    {{include:sell_totals.sql}},
    max(m_cum) AS m_last{{window_sell_sums}}
FROM st_ledger_sells
GROUP BY g;

CREATE OR REPLACE TEMP TABLE st_ledger_buys AS
SELECT g, rn, t, value FROM st_fifo_legs WHERE is_buy;

DROP TABLE st_fifo_legs;

-- Per group with a buy inside some finite window ({{buckets}}: none): its buys per window.
CREATE OR REPLACE TEMP TABLE st_buy_windows AS
SELECT g{{window_buy_sums}}
FROM (SELECT g, value, {{leg_bucket}} AS bucket FROM st_ledger_buys)
WHERE bucket < {{buckets}}
GROUP BY g;
