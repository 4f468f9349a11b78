"""Compression (docs/method.md section 4): the distillation pool, distillation, pruning and the published models of
Cowley et al. 2023. The compact model's architecture is ``models.compact``."""
