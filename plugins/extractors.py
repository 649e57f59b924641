"""Built-in extractor: ``rule`` (noun phrases of the thought tied to the question's objects)."""

from groundkit import RuleExtractor, hookimpl


@hookimpl
def register_extractors(register):
    register(RuleExtractor())
