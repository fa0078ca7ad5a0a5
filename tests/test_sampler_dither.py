"""Dithered read times and integration over them, against the closed form of a square
wave. The real Sampler loop runs on a virtual clock, so the long runs are exact and fast."""

import random
import statistics

import pytest

from wattui.sampler import FAST_PERIOD_S, POWER_POLL_S, ReadSchedule, Sampler
from wattui.sources.base import PowerIntegrator
from wattui.sources.simulated import SimulatedGPU, SimulatedSource


class VirtualClock:
    """Time that only moves when the sampler waits; stops the loop at ``end``."""

    def __init__(self, start: float, end: float):
        self.t = start
        self.end = end

    def now(self) -> float:
        return self.t

    def wait(self, delay: float) -> bool:
        self.t += delay
        return self.t >= self.end


class _Grid(random.Random):
    """A schedule that always reads at the start of its slot: the old fixed grid."""

    def random(self) -> float:
        return 0.0


def run_session(square_period_s, seconds, rng, gpus=8, poll_s=POWER_POLL_S):
    """Record ``seconds`` of a square load without a counter through the real sampler
    loop (first read at start, last read at stop); signed relative errors per GPU."""
    clock = VirtualClock(1_000.0, 1_000.0 + seconds)
    src = SimulatedSource(gpus, clock=clock.now, square_period_s=square_period_s, counter=False)
    sampler = Sampler([src], rng=rng, clock=clock.now, wait=clock.wait, poll_s=poll_s)
    assert sampler.period_s == FAST_PERIOD_S  # no counter: the fast period
    sampler.sample_once()  # the session's start edge, as the recorder does
    sampler._run()
    last = sampler.stop()  # the end edge
    assert src.last_t == pytest.approx(clock.end, abs=FAST_PERIOD_S)
    errors = []
    for r in last.readings:
        i = int(r.key[3:])
        exact = src.exact_energy(i)
        errors.append((r.energy_j - exact) / exact)
    return errors


def test_schedule_reads_once_per_slot_at_uniform_offsets():
    sched = ReadSchedule(50.0, 0.1, random.Random(7))
    offsets = []
    now = 50.0
    for k in range(4000):
        t = sched.next_read(now)
        assert 50.0 + k * 0.1 <= t < 50.0 + (k + 1) * 0.1 + 1e-9
        offsets.append((t - 50.0) / 0.1 - k)
        now = t
    # uniform within the slot: every tenth of the slot gets about a tenth of the reads
    bins = [0] * 10
    for u in offsets:
        bins[min(int(u * 10), 9)] += 1
    assert all(300 < b < 500 for b in bins), bins


def test_a_schedule_that_fell_behind_resumes_in_the_current_slot():
    sched = ReadSchedule(0.0, 0.1, random.Random(1))
    assert sched.next_read(0.0) < 0.1
    t = sched.next_read(5.03)  # suspended for 5 s
    assert 5.0 <= t < 5.1
    assert 5.1 <= sched.next_read(t) < 5.2


def worst_gpu(square_period_s, seeds, seconds=20.0, poll_s=POWER_POLL_S):
    """The worst GPU's |error| of each of ``seeds`` sessions."""
    return [
        max(abs(e) for e in run_session(square_period_s, seconds, random.Random(k), poll_s=poll_s))
        for k in range(seeds)
    ]


# the three loads, exact multiples of the slots (0.4, 1.2, 3.0), and periods
# between, over 0.3-3 s
SWEEP = [0.5, 0.55, 2.0, 0.3, 0.37, 0.4, 0.66, 0.9, 1.2, 1.55, 2.45, 3.0]


@pytest.mark.parametrize("square_period_s", SWEEP)
def test_every_gpu_is_within_1_percent_of_the_closed_form_over_20_s(square_period_s):
    """The #19 target: full reads every 0.1 s, the power polled every 20 ms between them.
    The median session has every GPU within 1 %; none is far off."""
    worst = worst_gpu(square_period_s, seeds=7)
    assert statistics.median(worst) < 0.01, [f"{100 * w:.2f} %" for w in worst]
    assert max(worst) < 0.016, [f"{100 * w:.2f} %" for w in worst]


def test_without_the_power_polls_the_same_check_fails():
    """Reads every 0.1 s alone (random phases, unbiased) leave about 3.5 % on the worst of
    8 GPUs over 20 s of a 0.5 s square load: the check above can fail."""
    worst = worst_gpu(0.5, seeds=7, poll_s=FAST_PERIOD_S)
    assert statistics.median(worst) > 0.02


def test_polls_do_not_change_the_full_reads_period():
    clock = VirtualClock(0.0, 20.0)
    src = SimulatedSource(2, clock=clock.now, square_period_s=0.5, counter=False)
    sampler = Sampler([src], rng=random.Random(5), clock=clock.now, wait=clock.wait)
    assert (sampler.period_s, sampler.poll_s) == (FAST_PERIOD_S, POWER_POLL_S)
    got = []
    sampler.subscribe(got.append)
    sampler._run()
    assert len(got) == 200  # one full read per 0.1 s slot (polls hand out no sample)
    gaps = [b.t_mono - a.t_mono for a, b in zip(got, got[1:])]
    assert statistics.fmean(gaps) == pytest.approx(0.1, rel=0.01)
    # a source with a counter is not polled: one slot per period, as before
    counted = Sampler([SimulatedSource(1)], period_s=0.2)
    assert counted.poll_s == counted.period_s == 0.2


def test_long_sessions_converge_further():
    worst = max(abs(e) for e in run_session(0.55, 300.0, random.Random(20261201)))
    assert worst < 0.004, f"worst GPU {100 * worst:.2f} %"


def test_a_fixed_grid_phase_locks_where_dithered_reads_do_not():
    """The same check catches the old schedule: on a 0.5 s square load read every 0.1 s,
    a grid reads the same five phases forever and is about 10 % off on some GPU."""
    grid = run_session(0.5, 120.0, _Grid(), poll_s=FAST_PERIOD_S)
    assert max(abs(e) for e in grid) > 0.05


def test_dithered_integration_is_unbiased():
    """Averaged over many short sessions the signed error goes to zero (a bias would not)."""
    errors = []
    rng = random.Random(3)
    for _ in range(12):
        errors += run_session(0.5, 20.0, rng)
    mean = sum(errors) / len(errors)
    assert abs(mean) < 0.003, f"mean signed error {100 * mean:.3f} %"


def test_integration_spans_the_first_to_the_last_read_exactly():
    """Trapezoids over the real read timestamps, edges included: on a linear stretch of
    power the integral over uneven reads is exact."""
    integ = PowerIntegrator()
    times = [0.0, 0.013, 0.1, 0.1, 0.27, 0.31, 0.9]  # uneven, one repeated timestamp
    for t in times:
        integ.update(t, 100.0 + 50.0 * t)
    assert integ.total == pytest.approx(100.0 * 0.9 + 25.0 * 0.9**2, rel=1e-12)


def test_square_wave_closed_form():
    g = SimulatedGPU(0, period_s=0.5, square=True, phase=0.25)
    # high while frac(t/0.5 + 0.25) < 0.5: t in [0, 0.125) and [0.375, 0.625) ...
    assert g.power(0.1) == g.idle_w + g.swing_w
    assert g.power(0.2) == g.idle_w
    assert g.energy_between(0.0, 0.5) == pytest.approx(g.idle_w * 0.5 + g.swing_w * 0.25)
    assert g.energy_between(0.1, 0.4) == pytest.approx(
        g.idle_w * 0.3 + g.swing_w * (0.025 + 0.025)
    )
