"""models (see DESIGN.md section 1)."""
