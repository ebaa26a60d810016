"""The PostgreSQL store's schema, as numbered migrations: each runs once, in order, in one transaction, under
an advisory lock (two instances starting together migrate once). A new migration is appended, never edited.

The audit trail is `events`: appended to (forget-user's pseudonymisation is the one rewrite, as on disk), its
`seq` the trail's order. Everything else is what the trail adds up to (`municipalities`, `registrations`),
or memory the trail does not hold (conversations, nudges, preferences, waves, threads, exports).
"""
from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the trail, the state it adds up to, and the bot's memory
    """
    create table events (
        seq bigserial primary key,
        code text not null,
        action text not null,
        task_id text,
        body jsonb not null  -- the event as a line of the file trail: by, at, conversation, scope, tenant, details
    );
    -- "historik" and "hvem markerede X?": the newest events of a municipality, or of one of its tasks
    create index events_by_municipality on events (code, seq desc);
    create index events_by_task on events (code, task_id, seq desc) where task_id is not null;

    create table municipalities (
        code text primary key,
        doc jsonb not null,        -- dialogs/events.py's doc
        seq bigint not null,       -- the last event it reflects
        tenant_id text
    );
    create index municipalities_bound on municipalities (code) where tenant_id is not null;

    create table registrations (
        scope text primary key,
        code text not null,
        tenant_id text,
        doc jsonb not null,
        seq bigint not null
    );
    create index registrations_by_code on registrations (code);
    create index registrations_by_tenant on registrations (tenant_id);

    create table conversations (key text primary key, doc jsonb not null, active boolean not null);
    create table nudges (key text primary key, state text not null, owner text not null, at text not null);
    create table waves (id text primary key, signature text not null);
    create table preferences (user_id text primary key, language text not null);
    create sequence threads_used;
    create table threads (conversation text primary key, doc jsonb not null,
                          used bigint not null default nextval('threads_used'));
    create index threads_by_use on threads (used);
    create table exports (token text primary key, name text not null, data bytea not null,
                          expires timestamptz not null);
    """,
    # 2: greetings claimed across instances (Teams announces one installation twice, maybe to two instances)
    """
    create table greetings (conversation text primary key, at timestamptz not null);
    """,
    # 3: every change to what instances keep in memory is announced (bot/pg_store.py's read cache), by the database
    # itself at commit, so a write costs no extra round trip and no instance can forget to announce one
    """
    create function announce_change() returns trigger language plpgsql as $$
    begin
        perform pg_notify('store_changed',
                          TG_TABLE_NAME || ':' || (to_jsonb(coalesce(NEW, OLD)) ->> TG_ARGV[0]));
        return null;
    end $$;
    create trigger municipalities_changed after insert or update or delete on municipalities
        for each row execute function announce_change('code');
    create trigger registrations_changed after insert or update or delete on registrations
        for each row execute function announce_change('scope');
    create trigger preferences_changed after insert or update or delete on preferences
        for each row execute function announce_change('user_id');
    create trigger threads_changed after insert or update or delete on threads
        for each row execute function announce_change('conversation');
    """,
)

# Any number: the key two instances take to migrate one at a time ("kombit" on a phone pad).
MIGRATION_LOCK = 566248
