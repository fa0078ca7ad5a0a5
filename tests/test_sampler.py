import threading
import time

import pytest
from conftest import wait_until

from wattui.sampler import FAST_PERIOD_S, Sampler
from wattui.sources.base import (
    DeviceInfo,
    DeviceReading,
    EnergyAccumulator,
    PowerIntegrator,
    PowerSource,
)
from wattui.sources.simulated import SimulatedSource


def test_sampler_hands_immutable_samples_with_both_clocks():
    got = []
    s = Sampler([SimulatedSource(2)], period_s=0.02)
    s.subscribe(got.append)
    s.start()
    wait_until(lambda: len(got) >= 5, what="five samples")
    s.stop()
    seqs = [x.seq for x in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    monos = [x.t_mono for x in got]
    assert all(b > a for a, b in zip(monos, monos[1:]))
    assert all(abs(x.t_wall - time.time()) < 5 for x in got)
    assert {r.key for r in got[0].readings} == {"gpu0", "gpu1"}
    with pytest.raises(AttributeError):
        got[0].seq = 5  # frozen


def test_history_is_bounded():
    s = Sampler([SimulatedSource(1)], period_s=1.0, history=10)
    for _ in range(1000):
        s.sample_once()
    assert len(s.recent) == 10
    assert s.latest.seq == 999


class _Integrating(PowerSource):
    name = "slow"
    needs_fast_poll = True

    def devices(self):
        return [DeviceInfo("gpu0", "gpu", 0, "x")]

    def read(self, t_mono):
        return [DeviceReading("gpu0", None, 1.0, "integrated", "instant")]


def test_sources_that_integrate_get_a_fast_period():
    assert Sampler([_Integrating()], period_s=1.0).period_s == FAST_PERIOD_S


class _Broken(PowerSource):
    name = "broken"

    def devices(self):
        return []

    def read(self, t_mono):
        raise RuntimeError("sensor fell off")


def test_a_failing_source_does_not_stop_sampling(capsys):
    s = Sampler([_Broken(), SimulatedSource(1)], period_s=1.0)
    x = s.sample_once()
    assert [r.key for r in x.readings] == ["gpu0"]
    assert s.errors == 1
    assert "sensor fell off" in capsys.readouterr().err


def test_stop_ends_the_thread_and_takes_a_last_sample():
    s = Sampler([SimulatedSource(1)], period_s=0.05)
    s.start()
    last = s.stop()
    assert last is s.latest
    assert not any(t.name == "wattui-sampler" and t.is_alive() for t in threading.enumerate())


def test_counter_reset_keeps_the_sum():
    acc = EnergyAccumulator()
    for raw in (1000.0, 1500.0, 2000.0, 300.0, 800.0):  # reset after 2000
        acc.update(raw)
    assert acc.total == pytest.approx(1000 + 300 + 500)
    assert acc.resets == 1


def test_wrap_adds_the_range():
    acc = EnergyAccumulator(wrap_at=1000.0)
    for raw in (900.0, 990.0, 10.0, 50.0):
        acc.update(raw)
    assert acc.total == pytest.approx(90 + 20 + 40)
    assert acc.wraps == 1


def test_integrator_is_exact_for_linear_power():
    integ = PowerIntegrator()
    for i in range(11):
        t = i * 0.1
        integ.update(t, 100.0 + 50.0 * t)  # P = 100 + 50 t over 1 s
    assert integ.total == pytest.approx(100.0 + 25.0)


class _CountingPolls(SimulatedSource):
    def __init__(self):
        super().__init__(1, counter=False)
        self.polls = 0

    def poll_power(self, t_mono):
        self.polls += 1
        super().poll_power(t_mono)


def test_the_thread_polls_the_power_of_sources_without_a_counter_between_full_reads():
    src = _CountingPolls()
    s = Sampler([src], period_s=0.1)
    got = []
    s.subscribe(got.append)
    s.sample_once()
    s.start()
    deadline = time.monotonic() + 30
    while (src.polls < 12 or len(got) < 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    s.stop()
    # four polls in every five 20 ms slots, a full read in the fifth
    assert src.polls >= 12 and len(got) >= 4
    assert src.polls > len(got)


class _Deferred(PowerSource):
    """Captures the time at each tick; the reading is made only when decoded."""

    name = "deferred"

    def __init__(self):
        self.captured = 0

    def devices(self):
        return [DeviceInfo("gpu0", "gpu", 0, "x")]

    def read(self, t_mono):
        return self.decode(self.capture(t_mono))

    def capture(self, t_mono, full=True):
        self.captured += 1
        return t_mono

    def decode(self, t_mono):
        return [DeviceReading("gpu0", t_mono, 1.0, "counter", "instant")]


def test_batch_listeners_get_every_sample_in_order_a_second_at_a_time():
    src = _Deferred()
    s = Sampler([src], period_s=0.02)
    batches = []
    s.subscribe_batch(batches.append)
    s.sample_once()  # the first read is handed over at once
    assert [len(b) for b in batches] == [1]
    s.start()
    wait_until(lambda: len(batches) >= 2, what="a batch from the thread")
    assert len(batches[1]) > 5  # a second of 20 ms ticks at once, not one call per tick
    delivered = batches[-1][-1].seq
    wait_until(lambda: src.captured > delivered + 3, what="reads not handed over yet")
    newest = s.newest()  # decoded on the spot for whoever asks
    assert newest.seq > delivered and newest.readings[0].energy_j == newest.t_mono
    last = s.stop()  # ... and the rest handed over at the end
    every = [x for b in batches for x in b]
    assert [x.seq for x in every] == list(range(last.seq + 1))
    assert every[-1] is last and [x.readings[0].energy_j for x in every] == [x.t_mono for x in every]


class _Flags(_Deferred):
    """Notes whether each capture was a full tick or a light one."""

    def __init__(self):
        super().__init__()
        self.full: list[bool] = []

    def capture(self, t_mono, full=True):
        self.full.append(full)
        return super().capture(t_mono, full)


def test_light_ticks_between_the_full_ones_that_hand_out_each_batch():
    """Sources may skip their once-a-second figures on light ticks: a tick is full at the
    first and last reads and where it hands out a batch, about once a second."""
    src = _Flags()
    s = Sampler([src], period_s=0.02)
    batches = []
    s.subscribe_batch(batches.append)
    s.sample_once()
    s.start()
    wait_until(lambda: len(batches) >= 3, what="two batches from the thread")
    last = s.stop()
    assert len(src.full) == last.seq + 1
    ends = {b[-1].seq for b in batches}  # each batch ends on the read that handed it out
    full = {seq for seq, f in enumerate(src.full) if f}
    assert full == ends | {0}
    assert len(src.full) - len(full) > 40  # most ticks are light
