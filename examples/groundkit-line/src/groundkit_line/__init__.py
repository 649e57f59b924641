"""Example third-party groundkit plugin: the ``line`` grounding type."""
