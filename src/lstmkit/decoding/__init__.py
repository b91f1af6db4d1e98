"""decoding (see DESIGN.md section 1)."""
