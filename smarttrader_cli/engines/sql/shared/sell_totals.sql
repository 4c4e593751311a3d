-- Shared by both engines: a group's sell totals, from its sells in FIFO order (§3).
    count(*) AS sell_count,
    sum(value) AS total_sold,
    sum(pnl) AS realized_pnl,
    sum(cost) AS matched_cost,
    sum(matched) AS matched_qty,
    sum(qty) AS sold_qty,
    sum(value * matched / qty) AS matched_proceeds,
    sum(held_seconds) AS held_seconds,
    sum(qty - matched) AS unmatched_sell_qty,
    count(*) FILTER (WHERE counts) AS counted_sells,
    count(*) FILTER (WHERE wins) AS winning_sells
