"""Every migration upgrades an empty database and downgrades back, and the models match them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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
