"""bench.fleet at toy size, so the benchmark can't rot: every stage of it runs (the sandbox
process, the loop baseline, the in-process profile, `provision fleet apply` as a subprocess)
and its verdict holds: every tenant converged, no write sent twice."""

from __future__ import annotations

import pytest

from bench import fleet as bench_fleet


@pytest.mark.slow
def test_fleet_bench_runs_end_to_end_at_toy_size(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_fleet.main(
        ["--tenants", "2", "--users", "12", "--sample", "1", "--profile-tenants", "1", "--workers", "1",
         "--threads-per-worker", "2", "--max-parallel", "2", "--per-op-users", "100"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "converged 2/2" in out
    assert "duplicate_writes 0" in out
    assert "fleet mode:" in out  # the baseline's ratio was computed
