"""`StoreSink`: at most one write per flush period, the end of training handed over without a
wait, and a writer thread that ends however the run does."""

from __future__ import annotations

from core.running.sink import StoreSink
from core.store import jobs
from core.store.db import session_factory
from core.store.metrics import read_series
from core.training.callbacks import TrainState


def claimed_job(database_url: str) -> str:
    with session_factory(database_url).begin() as session:
        job = jobs.create_job(
            session, spec={}, name="t", tags=[], queue="cpu", summary={}, epochs=2
        )
        jobs.claim_job(session, job_id=job.id, worker="w", device="cpu")
        return job.id


def stored(database_url: str, job_id: str) -> dict[str, list[int]]:
    with session_factory(database_url)() as session:
        return {s.name: s.steps for s in read_series(session, job_id=job_id)}


def sink_of(database_url: str, job_id: str) -> StoreSink:
    return StoreSink(
        session_factory(database_url),
        job_id,
        1,
        flush_seconds=3600,  # no flush falls due on its own during the test
        flush_points=1_000,
        outage_seconds=5,
    )


def test_epoch_ends_wait_for_the_flush_period_and_close_writes_everything(
    database_url: str,
) -> None:
    job_id = claimed_job(database_url)
    sink = sink_of(database_url, job_id)
    assert sink._thread.is_alive()  # started with the sink, not on the training path
    state = TrainState(epochs=2, steps_per_epoch=2)
    sink.on_train_begin(state)  # the first flush: the progress only
    for epoch in (1, 2):
        state.step += 2
        sink.on_step_losses(state, [state.step - 1, state.step], [1.0, 0.5])
        state.epoch = epoch
        sink.on_epoch_end(state, {"loss": 0.7})
    assert len(sink.buffer) == 6  # still the training thread's: no epoch end handed it over
    sink.on_train_end(state, {"loss": 0.7})  # hands over, waits for nothing
    sink.close()
    assert stored(database_url, job_id) == {"batch_loss": [1, 2, 3, 4], "loss": [2, 4]}
    assert not sink._thread.is_alive()
    sink.close()  # a second close is harmless


def test_an_abandoned_sink_stops_its_writer_without_writing_what_is_left(
    database_url: str,
) -> None:
    job_id = claimed_job(database_url)
    sink = sink_of(database_url, job_id)
    state = TrainState(epochs=1, steps_per_epoch=1, step=1)
    sink.on_step_losses(state, [1], [1.0])  # buffered, never handed over
    sink.abandon()
    assert not sink._thread.is_alive()
    assert stored(database_url, job_id) == {}
