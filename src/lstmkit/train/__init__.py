"""train (see DESIGN.md section 1)."""
