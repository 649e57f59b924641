"""The built-in decoding backend: groundkit's own engine."""

from groundkit import GroundkitBackend, hookimpl


@hookimpl
def register_decoding_backends(register):
    register(GroundkitBackend())
