"""Every migration upgrades an empty database and downgrades back, and the models match them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import migrations
from core.store.db import get_engine
from core.store.models import Base


def table_names(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names()) - {"alembic_version"}


def test_each_revision_upgrades_and_downgrades(empty_database_url: str) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(empty_database_url))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions, "no migrations found"
    for revision in revisions:  # one step at a time, down and up again
        migrations.upgrade(empty_database_url, revision)
        migrations.downgrade(empty_database_url, "-1")
        migrations.upgrade(empty_database_url, revision)
    assert table_names(empty_database_url) == set(Base.metadata.tables)
    migrations.downgrade(empty_database_url, "base")
    assert table_names(empty_database_url) == set()


def test_models_match_the_migrations(database_url: str) -> None:
    with get_engine(database_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"the models and migrations differ; write a migration: {diff}"


def test_the_projects_migration_keeps_every_row_and_moves_it_into_default(
    empty_database_url: str,
) -> None:
    """0006 rebuilds tables on SQLite (batch mode): the rows that refer to them must survive."""

    migrations.upgrade(empty_database_url, "0005")
    now = "2026-12-01 00:00:00+00:00"
    seed = [
        "INSERT INTO jobs (id, name, status, queue, spec, progress, summary, attempts, "
        "cancel_requested, release_requested, created_at, enqueued_at) VALUES ('j1', 'n', "
        "'succeeded', 'cpu', '{}', '{}', '{}', 1, false, false, :now, :now)",
        "INSERT INTO job_tags (job_id, tag, position) VALUES ('j1', 't', 0)",
        "INSERT INTO metric_points (job_id, name, step, epoch, value, kind, recorded_at) "
        "VALUES ('j1', 'loss', 1, 1, 0.5, 0, :now)",
        "INSERT INTO metric_rollups (job_id, name, bucket, points, min_value, max_value, "
        "last_step) VALUES ('j1', 'loss', 0, 1, 0.5, 0.5, 1)",
        "INSERT INTO sweeps (id, name, status, method, spec, base, run_cap, max_parallel, "
        "trials, created_at, updated_at) VALUES ('s1', 'n', 'finished', 'grid', '{}', '{}', "
        "1, 1, 1, :now, :now)",
        "INSERT INTO sweep_trials (job_id, sweep_id, number, params, told) VALUES "
        "('j1', 's1', 0, '{}', false)",
        "INSERT INTO datasets (id, name, format, sha256, target, task, size_bytes, rows, "
        "feature_shape, target_shape, encoding, artifact_key, created_at) VALUES ('ds_1', 'n', "
        "'csv', 'abc', 'y', 'classification', 1, 10, '[2]', '[]', '{}', 'datasets/ds_1.npz', :now)",
    ]
    tables = [
        "jobs",
        "job_tags",
        "metric_points",
        "metric_rollups",
        "sweeps",
        "sweep_trials",
        "datasets",
    ]
    engine = get_engine(empty_database_url)
    with engine.begin() as c:
        for statement in seed:
            c.execute(text(statement), {"now": now})
    migrations.upgrade(empty_database_url)
    with engine.connect() as c:
        counts = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
        owners = {
            t: c.execute(text(f"SELECT project FROM {t}")).scalar()
            for t in ("jobs", "sweeps", "datasets")
        }
    assert counts == dict.fromkeys(tables, 1)
    assert owners == dict.fromkeys(("jobs", "sweeps", "datasets"), "default")
    migrations.downgrade(empty_database_url, "0005")
    with engine.connect() as c:
        assert {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables} == counts
