{#- Fails for every row whose value is outside [min_value, max_value], or null unless allow_null. -#}
{% test between(model, column_name, min_value, max_value, allow_null=false) %}
select {{ column_name }}
from {{ model }}
where {{ "false" if allow_null else column_name ~ " is null" }}
   or {{ column_name }} < {{ min_value }}
   or {{ column_name }} > {{ max_value }}
{% endtest %}
