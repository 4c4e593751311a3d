-- Smart wallets: portfolio (ALL_TOKENS) rows that pass the base filters and carry no
-- excluding flag (gold.wallet_flags), with a tier,
-- a score in [0, 1] and a rank. Definitions: docs/scoring.md. Every threshold is a var.
with qualified as (
    select
        p.*,
        w.* exclude (wallet_address),
        w."closed_positions_{{ var('rank_window') }}" as closed_positions,
        w."basis_coverage_{{ var('rank_window') }}" as basis_coverage
    from {{ ref('wallet_portfolios') }} as p
    left join {{ ref('wallet_windows') }} as w using (wallet_address)
    where {{ passes_base_filters('p.') }}
      -- flagged wallets (gold.exclude_flagged, gold.exclude_flags) are not ranked
      and p.wallet_address not in (
          select wallet_address from {{ ref('wallet_flags') }} where excluded
      )
),

components as (
    select
        *,
        -- profitability: PnL and ROI each saturate at 0.5 when they equal their scale
        0.5 * (total_pnl / (total_pnl + {{ var('pnl_scale_usd') }}))
            + 0.5 * (greatest(roi, 0) / (greatest(roi, 0) + {{ var('roi_scale') }}))
            as profitability_component,
        least(greatest(win_rate, 0), 1) as win_rate_component,
        trade_count / (trade_count + {{ var('activity_scale_trades') }}) as activity_component
    from qualified
),

scored as (
    select
        *,
        (
            {{ var('weight_profitability') }} * profitability_component
            + {{ var('weight_win_rate') }} * win_rate_component
            + {{ var('weight_activity') }} * activity_component
        ) / (
            {{ var('weight_profitability') }} + {{ var('weight_win_rate') }}
            + {{ var('weight_activity') }}
        ) as score,
        case
            when {{ meets_tier('elite') }} then 'elite'
            when {{ meets_tier('strong') }} then 'strong'
            else 'promising'
        end as tier
    from components
)

select
    wallet_address,
    cast(row_number() over (order by score desc, wallet_address asc) as bigint) as rank,
    tier,
    cast(score as double) as score,
    total_pnl,
    realized_pnl,
    unrealized_pnl,
    roi,
    win_rate,
    trade_count,
    total_bought,
    total_sold,
    avg_holding_time_hours,
    trade_frequency_daily,
    first_trade_at,
    last_trade_at,
    '{{ var("rank_window") }}' as rank_window,
    cast(closed_positions as bigint) as closed_positions,
    cast(basis_coverage as double) as basis_coverage
from scored
