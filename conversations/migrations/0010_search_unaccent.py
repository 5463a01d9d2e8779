"""PostgreSQL's search ignores accents, as SQLite's does (FTS5's `remove_diacritics 2`).

A text search configuration `chatsite_search`: `simple` with the `unaccent` dictionary in
front for words, so `café` is indexed and searched as `cafe`. A configuration rather than
`to_tsvector('simple', unaccent(text))`: `to_tsvector(regconfig, text)` is already
IMMUTABLE (a generated column needs that), and `ts_headline` with it still marks the words
as written (`café` for a search of `cafe`), where a snippet of unaccented text would not.
A generated column's expression cannot be altered (before PostgreSQL 17): the column and
its GIN index are made again, which rewrites the turn table once.

`unaccent` ships with PostgreSQL (the contrib package) and is a trusted extension: the
database's owner may create it. SQLite and other databases: nothing to do.
"""

from django.db import DatabaseError, migrations

CONFIG = "chatsite_search"
# Every kind of word the default parser makes that may hold letters other than ASCII.
WORDS = "word, numword, hword, numhword, hword_part, hword_numpart"


def _column(config: str) -> list[str]:
    return [
        "DROP INDEX IF EXISTS turn_text_search",
        "ALTER TABLE conversations_turn DROP COLUMN IF EXISTS search_vector",
        f"""ALTER TABLE conversations_turn ADD COLUMN search_vector tsvector GENERATED ALWAYS AS
            (to_tsvector('{config}'::regconfig, replace(text, '<', '< '))) STORED""",
        "CREATE INDEX turn_text_search ON conversations_turn USING gin (search_vector)",
    ]


MISSING = ("PostgreSQL's unaccent extension could not be created ({error}). It comes with "
           "PostgreSQL's contrib package (the postgres Docker images have it); install it, "
           "or have a superuser run CREATE EXTENSION unaccent in this database, then "
           "migrate again.")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        except DatabaseError as exc:  # not installed, or not allowed
            raise RuntimeError(MISSING.format(error=str(exc).strip())) from exc
        cursor.execute(f"CREATE TEXT SEARCH CONFIGURATION {CONFIG} (COPY = simple)")
        cursor.execute(f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR {WORDS} "
                       "WITH unaccent, simple")
        for statement in _column(CONFIG):
            cursor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in _column("simple"):
            cursor.execute(statement)
        # The extension stays: something else in the database may use it.
        cursor.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {CONFIG}")


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0009_search"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
