"""npgan: generative adversarial networks in plain NumPy.

Every layer, loss and optimizer carries a hand-written forward pass and
gradient; :mod:`npgan.gradcheck` checks each gradient against central
finite differences.
"""

__version__ = "0.1.0"
