{#- The base filters of the ranking, shared by the model and the singular test. -#}
{% macro passes_base_filters(prefix='') -%}
    (
        {{ prefix }}total_pnl > 0
        and {{ prefix }}total_pnl >= {{ var('min_total_pnl') }}
        and {{ prefix }}roi >= {{ var('min_roi') }}
        and {{ prefix }}win_rate >= {{ var('min_win_rate') }}
        and {{ prefix }}trade_count >= {{ var('min_trade_count') }}
    )
{%- endmacro %}

{#- A tier's thresholds, from the vars `tier_<name>_<metric>`. The window rules (positive
    PnL in each of positive_windows, closed positions and basis coverage in the ranking
    window) apply once silver writes silver.wallet_pnl_windows; a null fails them. -#}
{% macro meets_tier(name) -%}
    (
        total_pnl >= {{ var('tier_' ~ name ~ '_min_total_pnl') }}
        and roi >= {{ var('tier_' ~ name ~ '_min_roi') }}
        and win_rate >= {{ var('tier_' ~ name ~ '_min_win_rate') }}
        and trade_count >= {{ var('tier_' ~ name ~ '_min_trade_count') }}
        {%- if lake_has('silver.wallet_pnl_windows') %}
        and coalesce(
            closed_positions >= {{ var('tier_' ~ name ~ '_min_closed_positions') }}
            and basis_coverage >= {{ var('tier_' ~ name ~ '_min_basis_coverage') }}
            {%- for w in var('tier_' ~ name ~ '_positive_windows') %}
            and "total_pnl_{{ w }}" > 0
            {%- endfor %},
            false
        )
        {%- endif %}
    )
{%- endmacro %}
