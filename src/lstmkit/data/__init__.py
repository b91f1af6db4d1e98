"""data (see DESIGN.md section 1)."""
