"""Repetitions are merged key by key, each server process's figures apart."""

from bench.measure import median_of


def test_median_of_merges_each_server_process_row_by_row():
    runs = [
        {
            "calls": 10,
            "servers": [{"cpu_ms_per_call": 40.0}, {"cpu_ms_per_call": 50.0}],
        },
        {
            "calls": 20,
            "servers": [{"cpu_ms_per_call": 44.0}, {"cpu_ms_per_call": 60.0}],
        },
        {
            "calls": 30,
            "servers": [{"cpu_ms_per_call": 42.0}, {"cpu_ms_per_call": 70.0}],
        },
    ]
    merged = median_of(runs)
    assert merged["calls"] == 20
    assert merged["servers"] == [{"cpu_ms_per_call": 42.0}, {"cpu_ms_per_call": 60.0}]
