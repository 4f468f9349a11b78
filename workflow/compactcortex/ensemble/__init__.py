"""The deep ensemble: data-driven models of V4 trained across sessions (METHODS.md section 3)."""
