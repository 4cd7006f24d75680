"""CoDream Network: shared code for miners, verifiers, task owners and the dapp."""
# first: pin torch's CPU kernels (the receipt arithmetic) before anything can run a torch operation
from .kernels import pin as _pin

__version__ = "0.1.0"

_pin()
