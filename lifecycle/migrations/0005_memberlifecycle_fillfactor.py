from django.db import migrations

TABLE = "lifecycle_memberlifecycle"


def leave_room(apps, schema_editor):
    # A nightly run rewrites tens of thousands of rows whose indexed columns mostly stay the same
    # (an order leaving the 90-day window changes only the 90-day figures). With free room on the
    # page, PostgreSQL keeps the new version there (a HOT update) and touches none of the indexes.
    # Pages written from now on keep the room; rewriting the table (VACUUM FULL) gives it to all.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 80)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ("lifecycle", "0004_lighter_row_writes"),
    ]

    operations = [
        migrations.RunPython(leave_room, fill_pages),
    ]
