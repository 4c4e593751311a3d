"""The HTML report of the gold layer: inline SVG charts, no network needed."""
