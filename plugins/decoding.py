"""The built-in decoding backend: groundkit's own engine."""

from groundkit import hookimpl
from groundkit.decoding import GroundkitBackend


@hookimpl
def register_decoding_backends(register):
    register(GroundkitBackend())
