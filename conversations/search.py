"""Search over what was said (`Turn.text`: each message and its reply), in the database.

PostgreSQL: its own full-text search (`websearch_to_tsquery`, `ts_rank`, `ts_headline`)
over a stored `search_vector` column, GIN-indexed (migrations 0009 and 0010). SQLite: an
FTS5 table that triggers keep in step with the turns (migration 0009). Any other database,
or an SQLite built without FTS5: every word must appear in the text (`icontains`, which
counts accents).

The query syntax is the web-search one everywhere: words (all must match), "a phrase",
`-word` (must not match), `OR`. The last word also matches as a prefix, so results follow
what is being typed. A query of only `-word`s lists the conversations that never say them.
Words are lower-cased and never stemmed (a team's chats are in many languages, and a
stemmed word cannot be prefix-matched), and their accents are ignored: PostgreSQL's
`chatsite_search` configuration is `simple` behind `unaccent`, SQLite's tokenizer is
unicode61 with `remove_diacritics 2`. Beyond accents, `unaccent` also spells out letters
such as ß, æ, ø, ł (`strasse` finds `Straße` on PostgreSQL only).
"""

import html
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Replace
from django.utils.safestring import SafeString, mark_safe

from conversations.models import Conversation, Turn

CONFIG = "chatsite_search"  # the GIN index is built on exactly this one (migration 0010)
FTS_TABLE = "conversations_turn_fts"  # FTS5, external content: the table below
FTS_CONTENT = "conversations_turn_search"  # (id INTEGER PRIMARY KEY, turn_id, text)
# Around each match in a snippet, replaced by <mark> after the text is escaped; control
# characters, so that no escaping can produce or swallow them.
START, STOP = "\x02", "\x03"
SNIPPET_WORDS = 16


@dataclass(frozen=True)
class Term:
    words: str  # one word or a phrase, as typed
    negated: bool = False
    phrase: bool = False


def parse(query: str) -> list[list[Term]]:
    """Web-search syntax as OR-groups of AND-ed terms: `a "b c" -d OR e` is
    [[a, "b c", -d], [e]] (OR binds loosest, as in websearch_to_tsquery). A group of only
    excluded terms is left out (see `excluded_only`)."""
    return [g for g in _groups(query) if any(not t.negated for t in g)]


def excluded_only(query: str) -> list[Term]:
    """The terms of a query made only of excluded ones (`-draft -"old plan"`), else []."""
    terms = [t for group in _groups(query) for t in group]
    return terms if all(t.negated for t in terms) else []


def _groups(query: str) -> list[list[Term]]:
    groups: list[list[Term]] = [[]]
    for match in re.finditer(r'(-?)"([^"]*)"?|(\S+)', query):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if word is not None and word.upper() == "OR":
            if groups[-1]:
                groups.append([])
            continue
        if word is not None:
            negated, word = ("-", word[1:]) if word.startswith("-") else ("", word)
        text = phrase if phrase is not None else word
        if re.search(r"\w", text):
            groups[-1].append(Term(text, bool(negated), phrase is not None))
    return groups


def _prefix_word(query: str) -> str:
    """The word being typed (the query's last, unquoted, not negated), for prefix matching."""
    match = re.search(r'(?:^|\s)(\w+)$', query)
    if not match or query.count('"') % 2 or match.group(1).upper() == "OR":
        return ""
    return match.group(1)


def _backend() -> str:
    if connection.vendor == "postgresql":
        return "postgresql"
    if connection.vendor == "sqlite":
        known = getattr(connection, "_chatsite_fts5", None)
        if known is None:  # absent when this SQLite has no FTS5 (the migration skipped it)
            known = FTS_TABLE in connection.introspection.table_names(include_views=False)
            connection._chatsite_fts5 = known
        if known:
            return "fts5"
    return "words"


# --- which turns match --------------------------------------------------------------------


def _pg_query(query: str):
    from django.contrib.postgres.search import SearchQuery

    websearch = SearchQuery(query, search_type="websearch", config=CONFIG)
    word = _prefix_word(query)
    if not word:
        return websearch
    rest = query[: -len(word)].strip()
    # 'word':* from \w characters only: nothing in it is tsquery syntax.
    prefix = SearchQuery(f"'{word}':*", search_type="raw", config=CONFIG)
    if rest:
        prefix = SearchQuery(rest, search_type="websearch", config=CONFIG) & prefix
    return websearch | prefix


def _pg_text() -> Replace:
    # PostgreSQL's parser reads `<script>` (and `<style>`) as a tag and skips what follows
    # it: a reply about HTML would be unsearchable past its first <script>. "< " is no tag.
    return Replace("text", Value("<"), Value("< "), output_field=TextField())


class StoredVector(Expression):
    """The turn table's `search_vector` column (migration 0010; not in the model, as SQLite
    has no tsvector), under whatever alias the query gives that table — also in subqueries."""

    def __init__(self, alias: str | None = None) -> None:
        from django.contrib.postgres.search import SearchVectorField

        super().__init__(output_field=SearchVectorField())
        self.alias = alias

    def resolve_expression(self, query=None, *args: Any, **kwargs: Any) -> "StoredVector":
        return StoredVector(query.get_initial_alias())

    def relabeled_clone(self, change_map: dict[str, str]) -> "StoredVector":
        return StoredVector(change_map.get(self.alias, self.alias))

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list]:
        return f"{compiler.quote_name_unless_alias(self.alias)}.search_vector", []


def _pg_vector() -> StoredVector:
    return StoredVector()  # to_tsvector(CONFIG, _pg_text()), stored


def _fts5_term(term: Term, prefix: bool) -> str:
    quoted = '"' + term.words.replace('"', '""') + '"'
    return quoted + "*" if prefix else quoted


def fts5_expression(query: str) -> str:
    """The query as an FTS5 MATCH expression: every term quoted, so nothing typed is syntax."""
    word = _prefix_word(query)
    groups = parse(query)
    parts = []
    for g, group in enumerate(groups):
        last = g == len(groups) - 1
        positive = [_fts5_term(t, last and word and t is group[-1] and t.words == word)
                    for t in group if not t.negated]
        expression = "(" + " AND ".join(positive) + ")"
        for term in (t for t in group if t.negated):
            expression = f"({expression} NOT {_fts5_term(term, False)})"
        parts.append(expression)
    return " OR ".join(parts)


def _words_filter(query: str) -> Q:
    """The fallback: every word of a group in the text (case-insensitively), any group."""
    match = Q(pk__in=[])
    for group in parse(query):
        both = Q()
        for term in group:
            has = Q(text__icontains=term.words)
            both &= ~has if term.negated else has
        match |= both
    return match


def _matching_turns(query: str) -> QuerySet[Turn]:
    backend = _backend()
    if backend == "postgresql":
        return Turn.objects.annotate(search=_pg_vector()).filter(search=_pg_query(query))
    if backend == "fts5":
        expression = fts5_expression(query)
        if not expression:
            return Turn.objects.none()
        return Turn.objects.filter(pk__in=RawSQL(
            f"SELECT s.turn_id FROM {FTS_TABLE} f JOIN {FTS_CONTENT} s ON s.id = f.rowid "
            f"WHERE {FTS_TABLE} MATCH %s", [expression]))
    if not parse(query):
        return Turn.objects.none()
    return Turn.objects.filter(_words_filter(query))


def conversation_ids(query: str, owner: Any = None) -> QuerySet:
    """Ids of the conversations with a message or reply matching `query` (web-search
    syntax); `owner=None`: everyone's (for reviewers). A lazy queryset, for `pk__in=`."""
    if excluded := excluded_only(query):
        return _without(excluded, owner).values_list("pk", flat=True)
    turns = _matching_turns(query)
    if owner is not None:
        turns = turns.filter(conversation__owner=owner)
    return turns.values_list("conversation_id", flat=True).distinct().order_by()


def _without(terms: list[Term], owner: Any) -> QuerySet[Conversation]:
    """The conversations in which none of `terms` is said, nor in the title: what a query
    of only `-word`s means (one turn without the word would not make a chat without it)."""
    # "a" OR "b c", a space after it so that no word is matched as a prefix.
    said = " OR ".join('"' + t.words.replace('"', " ") + '"' for t in terms) + " "
    conversations = Conversation.objects.exclude(pk__in=conversation_ids(said, owner))
    if owner is not None:
        conversations = conversations.filter(owner=owner)
    for term in terms:
        conversations = conversations.exclude(title__icontains=term.words)
    return conversations


# --- the sidebar: best turn per conversation, ranked, with a snippet ----------------------


def _best_pg(query: str, owner: Any) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
    from django.contrib.postgres.search import SearchRank

    rows = (_matching_turns(query).filter(conversation__owner=owner)
            .annotate(rank=SearchRank(_pg_vector(), _pg_query(query)))
            .order_by("conversation_id", "-rank", "-created").distinct("conversation_id")
            .values_list("conversation_id", "id", "rank"))
    return list(rows)


def _best_fts5(query: str, owner: Any) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
    expression = fts5_expression(query)
    if not expression:
        return []
    pk = Turn._meta.pk
    # Materialized: flattened into the GROUP BY, bm25() would run outside its full-text query.
    sql = f"""
        WITH hits AS MATERIALIZED (
            SELECT t.conversation_id, s.turn_id, bm25({FTS_TABLE}) AS rank
            FROM {FTS_TABLE} JOIN {FTS_CONTENT} s ON s.id = {FTS_TABLE}.rowid
            JOIN conversations_turn t ON t.id = s.turn_id
            JOIN conversations_conversation c ON c.id = t.conversation_id
            WHERE {FTS_TABLE} MATCH %s AND c.owner_id = %s)
        SELECT conversation_id, turn_id, MIN(rank) FROM hits GROUP BY conversation_id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [expression, owner.pk])
        # bm25 is lower for better matches
        return [(pk.to_python(c), pk.to_python(t), -rank) for c, t, rank in cursor.fetchall()]


def _best_words(query: str, owner: Any) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
    best: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID, float]] = {}
    rows = (_matching_turns(query).filter(conversation__owner=owner).order_by("-created")
            .values_list("conversation_id", "id"))
    for conversation_id, turn_id in rows.iterator():
        best.setdefault(conversation_id, (conversation_id, turn_id, 0.0))
    return list(best.values())


BEST = {"postgresql": _best_pg, "fts5": _best_fts5, "words": _best_words}


def _snippets_pg(query: str, turn_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    from django.contrib.postgres.search import SearchHeadline

    headline = SearchHeadline(_pg_text(), _pg_query(query), config=CONFIG, start_sel=START,
                              stop_sel=STOP, max_words=SNIPPET_WORDS, min_words=8,
                              max_fragments=1)
    return dict(Turn.objects.filter(pk__in=turn_ids).annotate(snippet=headline)
                .values_list("id", "snippet"))


def _snippets_fts5(query: str, turn_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    pk = Turn._meta.pk
    ids = [pk.get_db_prep_value(i, connection) for i in turn_ids]
    sql = f"""
        SELECT s.turn_id, snippet({FTS_TABLE}, 0, %s, %s, '…', {SNIPPET_WORDS})
        FROM {FTS_TABLE} JOIN {FTS_CONTENT} s ON s.id = {FTS_TABLE}.rowid
        WHERE {FTS_TABLE} MATCH %s AND s.turn_id IN ({", ".join(["%s"] * len(ids))})"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [START, STOP, fts5_expression(query), *ids])
        return {pk.to_python(turn_id): snippet for turn_id, snippet in cursor.fetchall()}


def _snippets_words(query: str, turn_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    words = [t.words for group in parse(query) for t in group if not t.negated]
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    snippets = {}
    for turn_id, text in Turn.objects.filter(pk__in=turn_ids).values_list("id", "text"):
        found = pattern.search(text)
        start = text.find(" ", found.start() - 60) + 1 if found and found.start() > 60 else 0
        end = start + 200
        piece = pattern.sub(lambda m: START + m.group(0) + STOP, text[start:end])
        snippets[turn_id] = ("…" if start else "") + piece + ("…" if end < len(text) else "")
    return snippets


SNIPPETS = {"postgresql": _snippets_pg, "fts5": _snippets_fts5, "words": _snippets_words}


def mark(snippet: str) -> SafeString:
    """Escape a snippet, then turn its match markers into <mark> (always balanced)."""
    out, open_ = [], False
    for piece in re.split(f"([{START}{STOP}])", snippet):
        if piece == START and not open_:
            out.append("<mark>")
            open_ = True
        elif piece == STOP and open_:
            out.append("</mark>")
            open_ = False
        elif piece not in (START, STOP):
            out.append(html.escape(re.sub(r"\s+", " ", piece)))
    if open_:
        out.append("</mark>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of text is escaped above


@dataclass(frozen=True)
class Results:
    conversations: list[Conversation]  # each with `.snippet` (safe HTML, may be empty)
    more: bool  # there were more than settings.SEARCH_RESULTS


def search(query: str, *, owner: Any) -> Results:
    """The owner's conversations matching `query` in a title or in what was said: title
    matches first, then by relevance, then newest; each with a snippet of its best turn."""
    limit = settings.SEARCH_RESULTS
    if excluded := excluded_only(query):  # nothing to rank or quote: the newest first
        found = list(_without(excluded, owner).order_by("-updated")[:limit + 1])
        for conversation in found:
            conversation.snippet = mark("")
        return Results(conversations=found[:limit], more=len(found) > limit)
    backend = _backend()
    # Not stripped: a space after the last word says it is whole (no prefix matching).
    best = {c: (t, score) for c, t, score in BEST[backend](query, owner)}
    titled = set(Conversation.objects.filter(owner=owner, title__icontains=query.strip())
                 .values_list("id", flat=True))
    found = list(Conversation.objects.filter(owner=owner, pk__in=set(best) | titled))
    found.sort(key=lambda c: (c.pk in titled, best.get(c.pk, (None, 0.0))[1], c.updated),
               reverse=True)
    shown = found[:limit]
    turn_ids = [best[c.pk][0] for c in shown if c.pk in best]
    snippets = SNIPPETS[backend](query, turn_ids) if turn_ids else {}
    for conversation in shown:
        turn_id = best.get(conversation.pk, (None,))[0]
        conversation.snippet = mark(snippets.get(turn_id, ""))
    return Results(conversations=shown, more=len(found) > limit)
