"""CoDream Network: shared code for miners, verifiers, task owners and the dapp."""
__version__ = "0.1.0"
