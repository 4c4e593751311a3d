-- What left each finite window when the windows' end moved from {{old_end}} to the run's
-- as_of (docs/pnl.md §7): the ledger's legs ({{ledger}}) with old_end - L < t <= as_of - L,
-- summed per (wallet, token, window), outside the recomputed wallets.
CREATE OR REPLACE TEMP TABLE st_band_sums AS
WITH windows AS (
{{windows_cte}}
)
SELECT
    l.wallet_address,
    l.token_address,
    w.window_name,
    count(*) FILTER (WHERE l.is_buy) AS buy_count,
    coalesce(sum(l.value_usd) FILTER (WHERE l.is_buy), 0E0) AS total_bought,
    count(*) FILTER (WHERE NOT l.is_buy) AS sell_count,
    coalesce(sum(l.value_usd) FILTER (WHERE NOT l.is_buy), 0E0) AS total_sold,
    coalesce(sum(l.realized_pnl) FILTER (WHERE NOT l.is_buy), 0E0) AS realized_pnl,
    coalesce(sum(l.matched_cost) FILTER (WHERE NOT l.is_buy), 0E0) AS matched_cost,
    coalesce(sum(l.value_usd * l.matched_qty / l.sold_qty) FILTER (WHERE NOT l.is_buy), 0E0)
        AS matched_proceeds,
    coalesce(sum(l.sold_qty) FILTER (WHERE NOT l.is_buy), 0E0) AS sold_qty,
    coalesce(sum(l.matched_qty) FILTER (WHERE NOT l.is_buy), 0E0) AS matched_qty,
    count(*) FILTER (WHERE NOT l.is_buy AND l.counts) AS counted_sells,
    count(*) FILTER (WHERE NOT l.is_buy AND l.wins) AS winning_sells
FROM {{ledger}} l
JOIN windows w
    ON w.start_t IS NOT NULL
   AND l.block_unix_time > w.start_t - (w.end_t - {{old_end}})
   AND l.block_unix_time <= w.start_t
WHERE l.wallet_address NOT IN (SELECT wallet FROM {{recomputed}})
GROUP BY l.wallet_address, l.token_address, w.window_name;
