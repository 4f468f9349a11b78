"""Compact models (the students): the architecture, and the published models of Cowley et al. 2023 (METHODS.md 4)."""

from compactcortex.compact.model import CompactModel, count_parameters, smooth_depthwise_kernels_

__all__ = ["CompactModel", "count_parameters", "smooth_depthwise_kernels_"]
