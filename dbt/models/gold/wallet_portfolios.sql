-- The candidates of the ranking: one portfolio (ALL_TOKENS) row per wallet. For the
-- 'all' window, silver.wallet_pnl's row; for another window (gold.window, st gold rank
-- --window), its PnL, ROI, win rate, counts and volumes come from that window of
-- silver.wallet_pnl_windows and the rest (holding time, first and last trade) from silver.
{% if var('rank_window') == 'all' %}
select *
from {{ source('silver', 'wallet_pnl') }}
where token_address = 'ALL_TOKENS'
{% else %}
select
    p.* replace (
        w.realized_pnl as realized_pnl,
        w.unrealized_pnl as unrealized_pnl,
        w.total_pnl as total_pnl,
        w.trade_count as trade_count,
        w.buy_count as buy_count,
        w.sell_count as sell_count,
        w.winning_sells as winning_sells,
        w.win_rate as win_rate,
        w.total_bought as total_bought,
        w.total_sold as total_sold,
        w.matched_cost as matched_cost,
        w.roi as roi
    )
from {{ source('silver', 'wallet_pnl') }} as p
join {{ source('silver', 'wallet_pnl_windows') }} as w
    on w.wallet_address = p.wallet_address
    and w.token_address = 'ALL_TOKENS'
    and w."window" = '{{ var("rank_window") }}'
where p.token_address = 'ALL_TOKENS'
{% endif %}
