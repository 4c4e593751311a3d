-- F and G at each sell's bounds without ASOF JOIN: lots and probes in one ordered stream per
-- (wallet, token) by queue position; each probe carries forward the last lot that starts
-- strictly below it (probes sort before a lot starting at the same position).
WITH lots AS (
    SELECT wallet, token, b_prev AS pos, 1 AS kind,
           b_prev AS start_qty, c_prev AS lot_c, g_prev AS lot_g,
           value / qty AS unit_cost, CAST(t - t0 AS DOUBLE) AS age,
           CAST(NULL AS BIGINT) AS st, CAST(NULL AS STRING) AS stx,
           CAST(NULL AS INT) AS sins, CAST(NULL AS INT) AS sinner, CAST(NULL AS INT) AS side
    FROM {{fifo_legs}}
    WHERE is_buy AND b_cum > b_prev
),
probes AS (
    SELECT wallet, token, m_cum AS pos, 0 AS kind,
           NULL, NULL, NULL, NULL, NULL, t, tx_hash, ins_index, inner_ins_index, 1
    FROM {{fifo_legs}} WHERE NOT is_buy
    UNION ALL
    SELECT wallet, token, m_prev AS pos, 0 AS kind,
           NULL, NULL, NULL, NULL, NULL, t, tx_hash, ins_index, inner_ins_index, -1
    FROM {{fifo_legs}} WHERE NOT is_buy
),
stream AS (
    SELECT * FROM lots UNION ALL SELECT * FROM probes
),
carried AS (
    SELECT
        wallet, token, kind, pos, st, stx, sins, sinner, side,
        last(start_qty, TRUE) OVER w AS start_qty,
        last(lot_c, TRUE) OVER w AS lot_c,
        last(lot_g, TRUE) OVER w AS lot_g,
        last(unit_cost, TRUE) OVER w AS unit_cost,
        last(age, TRUE) OVER w AS age
    FROM stream
    WINDOW w AS (PARTITION BY wallet, token ORDER BY pos, kind
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
bounds AS (
    SELECT
        wallet, token, st AS t, stx AS tx_hash, sins AS ins_index, sinner AS inner_ins_index,
        sum(side * coalesce(lot_c + (pos - start_qty) * unit_cost, 0.0D)) AS cost,
        sum(side * coalesce(lot_g + (pos - start_qty) * age, 0.0D)) AS g_delta
    FROM carried
    WHERE kind = 0
    GROUP BY wallet, token, st, stx, sins, sinner
),
joined AS (
    SELECT s.wallet, s.token, s.qty, s.value, s.t, s.t0, s.m_cum - s.m_prev AS matched,
           s.bucket, b.cost, b.g_delta
    FROM {{fifo_legs}} s
    JOIN bounds b
      ON s.wallet = b.wallet AND s.token = b.token AND s.t = b.t AND s.tx_hash = b.tx_hash
     AND s.ins_index = b.ins_index AND s.inner_ins_index = b.inner_ins_index
    WHERE NOT s.is_buy
)
SELECT
    wallet, token, bucket, qty, value, matched, cost,
    value * matched / qty AS proceeds,
    value * matched / qty - cost AS pnl,
    CAST(t - t0 AS DOUBLE) * matched - g_delta AS held_seconds,
    matched > 1e-9D * qty AS counts,
    matched > 1e-9D * qty AND value * matched / qty - cost > 1e-9D * (value * matched / qty)
        AS wins
FROM joined
