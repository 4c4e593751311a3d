-- Smart-wallet flow per token and time window, for the windows that start at or after
-- `flows_since` (st passes the start of the recompute range, aligned to a window).
with legs as (
    select
        *,
        to_timestamp(
            floor(epoch(event_time) / ({{ var('flows_window_minutes') }} * 60))
            * ({{ var('flows_window_minutes') }} * 60)
        ) as window_start
    from {{ ref('smart_legs') }}
)

-- A volume is unknown (null) when some of its legs have no USD value: a partial sum
-- would understate it, and 0 would claim there was no flow. The unpriced counts say how
-- many legs are behind each unknown.
select
    token_address,
    window_start,
    cast({{ var('flows_window_minutes') }} as integer) as window_minutes,
    case when count(*) filter (where direction = 'buy' and value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'buy'), 0) end as buy_volume_usd,
    case when count(*) filter (where direction = 'sell' and value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'sell'), 0) end as sell_volume_usd,
    case when count(*) filter (where value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'buy'), 0)
            - coalesce(sum(value_usd) filter (where direction = 'sell'), 0) end as net_flow_usd,
    count(*) filter (where direction = 'buy') as buy_count,
    count(*) filter (where direction = 'sell') as sell_count,
    count(distinct wallet) filter (where direction = 'buy') as smart_buyers,
    count(distinct wallet) filter (where direction = 'sell') as smart_sellers,
    count(*) filter (where direction = 'buy' and value_usd is null) as unpriced_buy_count,
    count(*) filter (where direction = 'sell' and value_usd is null) as unpriced_sell_count
from legs
group by token_address, window_start
