-- What smart money is buying now: token_flows' legs summed over the whole recompute
-- range, with distinct wallets counted over the range (not summed per window).
-- Unknown USD stays unknown (null), as in token_flows.
select
    token_address,
    case when count(*) filter (where value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'buy'), 0)
            - coalesce(sum(value_usd) filter (where direction = 'sell'), 0) end as net_flow_usd,
    case when count(*) filter (where direction = 'buy' and value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'buy'), 0) end as buy_volume_usd,
    case when count(*) filter (where direction = 'sell' and value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'sell'), 0) end as sell_volume_usd,
    count(*) filter (where direction = 'buy') as buy_count,
    count(*) filter (where direction = 'sell') as sell_count,
    count(distinct wallet) filter (where direction = 'buy') as smart_buyers,
    count(distinct wallet) filter (where direction = 'sell') as smart_sellers,
    count(*) filter (where value_usd is null) as unpriced_legs,
    max(event_time) as last_trade_at
from {{ ref('smart_legs') }}
group by token_address
