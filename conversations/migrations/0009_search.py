"""Full-text search over Turn.text, in each database's own way (conversations/search.py).

PostgreSQL: a stored generated column `search_vector` = to_tsvector('simple', text) with a
GIN index on it. Stored, because ranking the matches needs each one's vector: recomputed
from the text, a search matching 20,000 turns took 3 s; read from the column, 0.17 s.
`<` is spaced (`< `) so that the parser never reads `<script>` as a tag and skips the words
after it. The column is not in the model (SQLite has no tsvector): Django never writes it.
SQLite: an FTS5 index whose content is a table of (integer id, turn id, text) that triggers
on the turn table keep in step. Its own integer key because the turn table has none, and
VACUUM may renumber the implicit rowids an FTS5 index would otherwise point at.
An SQLite without FTS5 gets nothing here: search then falls back to `icontains`.
Neither touches the migration state.
"""

from django.db import OperationalError, migrations

POSTGRESQL_CREATE = [
    """ALTER TABLE conversations_turn ADD COLUMN search_vector tsvector GENERATED ALWAYS AS
       (to_tsvector('simple'::regconfig, replace(text, '<', '< '))) STORED""",
    "CREATE INDEX turn_text_search ON conversations_turn USING gin (search_vector)",
]
POSTGRESQL_DROP = [
    "DROP INDEX IF EXISTS turn_text_search",
    "ALTER TABLE conversations_turn DROP COLUMN IF EXISTS search_vector",
]

SQLITE_CREATE = [
    """CREATE TABLE conversations_turn_search (
        id INTEGER PRIMARY KEY, turn_id char(32) NOT NULL UNIQUE, text TEXT NOT NULL)""",
    """CREATE VIRTUAL TABLE conversations_turn_fts USING fts5(
        text, content='conversations_turn_search', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER conversations_turn_search_ai AFTER INSERT ON conversations_turn_search
       BEGIN INSERT INTO conversations_turn_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER conversations_turn_search_ad AFTER DELETE ON conversations_turn_search
       BEGIN INSERT INTO conversations_turn_fts(conversations_turn_fts, rowid, text)
             VALUES ('delete', old.id, old.text); END""",
    """CREATE TRIGGER conversations_turn_search_au AFTER UPDATE ON conversations_turn_search
       BEGIN INSERT INTO conversations_turn_fts(conversations_turn_fts, rowid, text)
             VALUES ('delete', old.id, old.text);
             INSERT INTO conversations_turn_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER conversations_turn_text_ai AFTER INSERT ON conversations_turn
       BEGIN INSERT INTO conversations_turn_search(turn_id, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER conversations_turn_text_au AFTER UPDATE OF text ON conversations_turn
       WHEN old.text IS NOT new.text
       BEGIN UPDATE conversations_turn_search SET text = new.text WHERE turn_id = old.id; END""",
    """CREATE TRIGGER conversations_turn_text_ad AFTER DELETE ON conversations_turn
       BEGIN DELETE FROM conversations_turn_search WHERE turn_id = old.id; END""",
    """INSERT INTO conversations_turn_search(turn_id, text)
       SELECT id, text FROM conversations_turn""",
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS conversations_turn_text_ai",
    "DROP TRIGGER IF EXISTS conversations_turn_text_au",
    "DROP TRIGGER IF EXISTS conversations_turn_text_ad",
    "DROP TABLE IF EXISTS conversations_turn_fts",
    "DROP TABLE IF EXISTS conversations_turn_search",  # its own triggers go with it
]


def _has_fts5(cursor) -> bool:
    try:
        cursor.execute("CREATE VIRTUAL TABLE temp.chatsite_fts5_probe USING fts5(x)")
    except OperationalError:  # "no such module: fts5"
        return False
    cursor.execute("DROP TABLE temp.chatsite_fts5_probe")
    return True


def _run(schema_editor, statements: list[str]) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRESQL_CREATE)
    elif vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            fts5 = _has_fts5(cursor)
        if fts5:
            _run(schema_editor, SQLITE_CREATE)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, {"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP}.get(vendor, []))


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0008_review"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
