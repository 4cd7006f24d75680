"""CoDream Network: shared code for miners, verifiers, task owners and the dapp."""
# first: pins the receipt arithmetic (torch's CPU kernels) before anything can run a torch operation
from . import arithmetic as _arithmetic  # noqa: F401

__version__ = "0.1.0"
