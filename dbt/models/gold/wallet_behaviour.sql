-- Per wallet, the trading behaviour behind the bot and sniper flags (docs/scoring.md):
-- swaps per active day, sells that flip a buy within seconds, the median FIFO holding
-- time of its sells, and first buys within seconds of a token's first trade seen.
with ordered as (
    select
        *,
        sum(case when side = 'buy' then quantity else 0 end) over position_order as bought_qty,
        sum(case when side = 'sell' then quantity else 0 end) over position_order as sold_qty
    from {{ ref('flag_legs') }}
    window position_order as (
        partition by wallet_address, token_address
        order by block_unix_time, tx_hash, ins_index, inner_ins_index, fill_id
        rows between unbounded preceding and current row
    )
),

-- FIFO on quantities (pnl.md §2, set-based form): after leg k the buy queue has given
-- out M_k = Q_k + min(0, min_{j<=k} (B_j - Q_j)); sell k consumed [M_{k-1}, M_k].
queue as (
    select
        *,
        sold_qty + least(0, min(bought_qty - sold_qty) over (
            partition by wallet_address, token_address
            order by block_unix_time, tx_hash, ins_index, inner_ins_index, fill_id
            rows between unbounded preceding and current row
        )) as taken_qty
    from ordered
),

sells as (
    select
        *,
        taken_qty - coalesce(lag(taken_qty) over (
            partition by wallet_address, token_address
            order by block_unix_time, tx_hash, ins_index, inner_ins_index, fill_id
        ), 0) as matched_qty
    from queue
    qualify side = 'sell'
),

-- each lot's place in the buy queue: it holds units [start_qty, bought_qty)
lots as (
    select wallet_address, token_address, block_unix_time, bought_qty - quantity as start_qty
    from queue
    where side = 'buy'
),

-- holding time of a matched sell: from the buy of the lot its middle unit came from
held as (
    select s.wallet_address, s.block_unix_time - l.block_unix_time as held_seconds
    from sells as s
    asof join lots as l
        on s.wallet_address = l.wallet_address
        and s.token_address = l.token_address
        and s.taken_qty - 0.5 * s.matched_qty >= l.start_qty
    where s.matched_qty > s.quantity * {{ float_residue() }}
),

-- a flip: the latest buy of the same token at or before the sell (same second counts)
flips as (
    select
        s.wallet_address,
        count(*) as sell_count,
        count(*) filter (
            where b.block_unix_time is not null
              and s.block_unix_time - b.block_unix_time <= {{ var('bot_flip_seconds') }}
        ) as flip_count
    from sells as s
    asof left join (select * from {{ ref('flag_legs') }} where side = 'buy') as b
        on s.wallet_address = b.wallet_address
        and s.token_address = b.token_address
        and s.block_unix_time >= b.block_unix_time
    group by s.wallet_address
),

activity as (
    select
        wallet_address,
        count(distinct (tx_hash, ins_index, inner_ins_index, fill_id)) as swap_count,
        count(distinct block_unix_time // {{ seconds_per_day() }}) as active_days
    from {{ ref('flag_legs') }}
    group by wallet_address
),

token_first_trade as (
    select token_address, min(block_unix_time) as first_trade_at
    from {{ ref('flag_legs') }}
    group by token_address
),

first_buys as (
    select wallet_address, token_address, min(block_unix_time) as first_buy_at
    from {{ ref('flag_legs') }}
    where side = 'buy'
    group by wallet_address, token_address
),

snipes as (
    select
        b.wallet_address,
        count(*) as tokens_bought,
        count(*) filter (
            where b.first_buy_at - t.first_trade_at <= {{ var('sniper_seconds') }}
        ) as sniped_tokens
    from first_buys as b
    join token_first_trade as t using (token_address)
    group by b.wallet_address
),

holding as (
    select
        wallet_address,
        count(*) as matched_sell_count,
        median(held_seconds) as median_hold_seconds
    from held
    group by wallet_address
)

select
    a.wallet_address,
    a.swap_count,
    a.active_days,
    a.swap_count / a.active_days as trades_per_active_day,
    coalesce(f.sell_count, 0) as sell_count,
    coalesce(f.flip_count, 0) as flip_count,
    f.flip_count / nullif(f.sell_count, 0) as flip_share,
    coalesce(h.matched_sell_count, 0) as matched_sell_count,
    cast(h.median_hold_seconds as double) as median_hold_seconds,
    coalesce(s.tokens_bought, 0) as tokens_bought,
    coalesce(s.sniped_tokens, 0) as sniped_tokens,
    s.sniped_tokens / nullif(s.tokens_bought, 0) as sniped_share
from activity as a
left join flips as f using (wallet_address)
left join holding as h using (wallet_address)
left join snipes as s using (wallet_address)
