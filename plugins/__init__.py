"""groundkit's built-in plugins. They import only groundkit's public API and are registered
through the ``groundkit`` entry-point group, exactly like a third-party package."""
