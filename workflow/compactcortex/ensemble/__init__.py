"""The deep ensemble: data-driven models of V4 trained across sessions (docs/method.md section 3)."""
