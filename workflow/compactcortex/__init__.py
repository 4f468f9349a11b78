"""compactcortex: data-driven and compact deep network models of visual-cortex neurons.

Implements Cowley, Stan, Pillow & Smith, "Compact deep neural network models of visual cortex".
"""

__version__ = "0.1.0"
