-- Every wallet the stage saw (top holders, traders, silver portfolios) with its flags,
-- the reason for each and the numbers behind them. Definitions: docs/scoring.md.
with wallets as (
    select * from {{ source('stage', 'st_account_checks') }}
),

known as (
    select * from {{ source('stage', 'st_known_accounts') }}
),

portfolio as (
    select wallet_address, total_bought, total_sold
    from {{ ref('wallet_portfolios') }}
),

coverage as (
    {{ wallet_basis_coverage() }}
),

measured as (
    select
        w.wallet_address,
        w.is_holder,
        w.is_trader,
        w.on_curve,
        w.address_error,
        k.kind as known_kind,
        k.name as known_name,
        coalesce(b.swap_count, 0) as swap_count,
        coalesce(b.active_days, 0) as active_days,
        b.trades_per_active_day,
        coalesce(b.sell_count, 0) as sell_count,
        coalesce(b.flip_count, 0) as flip_count,
        b.flip_share,
        coalesce(b.matched_sell_count, 0) as matched_sell_count,
        b.median_hold_seconds,
        coalesce(b.tokens_bought, 0) as tokens_bought,
        coalesce(b.sniped_tokens, 0) as sniped_tokens,
        b.sniped_share,
        p.total_bought,
        p.total_sold,
        c.basis_coverage
    from wallets as w
    left join known as k on k.address = w.wallet_address
    left join {{ ref('wallet_behaviour') }} as b on b.wallet_address = w.wallet_address
    left join portfolio as p on p.wallet_address = w.wallet_address
    left join coverage as c on c.wallet_address = w.wallet_address
),

tested as (
    select
        *,
        coalesce(trades_per_active_day > {{ var('bot_max_trades_per_day') }}, false)
            as bot_by_rate,
        coalesce(
            sell_count >= {{ var('bot_min_sells') }}
            and flip_share >= {{ var('bot_min_flip_share') }}, false
        ) as bot_by_flips,
        coalesce(
            matched_sell_count >= {{ var('bot_min_sells') }}
            and median_hold_seconds < {{ var('bot_max_median_hold_seconds') }}, false
        ) as bot_by_holding,
        coalesce(
            sniped_tokens >= {{ var('sniper_min_tokens') }}
            and sniped_share >= {{ var('sniper_min_share') }}, false
        ) as is_sniper,
        coalesce(
            total_sold > 0
            and total_sold >= {{ var('distributor_min_sold_to_bought') }} * total_bought
            and basis_coverage < {{ var('distributor_max_basis_coverage') }}, false
        ) as is_distributor
    from measured
),

flagged as (
    select
        *,
        concat_ws(',',
            case when bot_by_rate or bot_by_flips or bot_by_holding then 'bot' end,
            case when is_sniper then 'sniper' end,
            case when is_distributor then 'distributor' end,
            case when on_curve = false then 'off_curve' end,
            case when address_error is not null then 'invalid_address' end,
            case when known_kind = 'exchange' then 'exchange' end,
            case when known_kind = 'burn' then 'burn' end,
            case when known_kind = 'program' then 'program' end
        ) as flags,
        concat_ws('; ',
            case when bot_by_rate then printf(
                'bot: %.1f swaps per active day > %s',
                trades_per_active_day, '{{ var("bot_max_trades_per_day") }}') end,
            case when bot_by_flips then printf(
                'bot: %d of %d sells (%.2f) within %ss of a buy, share >= %s',
                flip_count, sell_count, flip_share,
                '{{ var("bot_flip_seconds") }}', '{{ var("bot_min_flip_share") }}') end,
            case when bot_by_holding then printf(
                'bot: median holding %.0fs < %ss over %d matched sells',
                median_hold_seconds, '{{ var("bot_max_median_hold_seconds") }}',
                matched_sell_count) end,
            case when is_sniper then printf(
                'sniper: first buy within %ss of the first trade on %d of %d tokens',
                '{{ var("sniper_seconds") }}', sniped_tokens, tokens_bought) end,
            case when is_distributor then printf(
                'distributor: sold %.2f USD vs bought %.2f USD, basis coverage %.2f < %s',
                total_sold, coalesce(total_bought, 0), basis_coverage,
                '{{ var("distributor_max_basis_coverage") }}') end,
            case when on_curve = false then
                'off_curve: a program-derived address (no private key: pool, vault or authority)'
            end,
            case when address_error is not null then 'invalid_address: ' || address_error end,
            case when known_kind is not null then known_kind || ': ' || known_name end
        ) as reasons
    from tested
)

select
    wallet_address,
    flags <> '' as is_flagged,
    flags,
    reasons,
    {{ excluding_flags('flags') }} as excluded,
    is_holder,
    is_trader,
    on_curve,
    address_error,
    known_kind,
    known_name,
    cast(swap_count as bigint) as swap_count,
    cast(active_days as bigint) as active_days,
    cast(trades_per_active_day as double) as trades_per_active_day,
    cast(sell_count as bigint) as sell_count,
    cast(flip_count as bigint) as flip_count,
    cast(flip_share as double) as flip_share,
    cast(matched_sell_count as bigint) as matched_sell_count,
    median_hold_seconds,
    cast(tokens_bought as bigint) as tokens_bought,
    cast(sniped_tokens as bigint) as sniped_tokens,
    cast(sniped_share as double) as sniped_share,
    total_bought,
    total_sold,
    cast(basis_coverage as double) as basis_coverage
from flagged
