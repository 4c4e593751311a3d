-- One row per (wallet, token) with any leg (docs/pnl.md §3): its leg counts and sums, and
-- an integer id g (a hash of the pair when that is collision-free in this run, else a row
-- number) that the FIFO's window passes and joins use instead of the two strings.
CREATE OR REPLACE TEMP TABLE st_groups AS
SELECT
    {{group_id}} AS g,
    wallet, token,
    count(*) FILTER (WHERE value IS NULL) AS unpriced,
    count(*) FILTER (WHERE fifo AND is_buy) AS buy_count,
    count(*) FILTER (WHERE fifo AND NOT is_buy) AS sell_count,
    coalesce(sum(value) FILTER (WHERE fifo AND is_buy), 0.0) AS total_bought,
    coalesce(sum(qty) FILTER (WHERE fifo AND is_buy), 0.0) AS bought_qty,
    min(t) FILTER (WHERE fifo) AS first_t,
    max(t) FILTER (WHERE fifo) AS last_t
FROM (SELECT *, coalesce(value >= {{min_leg_usd}}, FALSE) AS fifo FROM {{legs}})
GROUP BY wallet, token
HAVING count(*) FILTER (WHERE value IS NULL OR fifo) > 0;
