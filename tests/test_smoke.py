import groundkit as gk


def test_every_dialect_example_round_trips():
    reg = gk.get_registry()
    assert not reg.failures
    for name in reg.dialects.names():
        d = reg.dialect(name)
        trace = gk.parse(d.example, name)
        assert trace.groundings, name
        assert gk.format_trace(trace, name) == d.example
