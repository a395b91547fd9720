-- Retention (projections/retention.py): finished instances older than an age leave the read
-- models (their instance, attempt, rejection and archive rows); the log keeps every event,
-- and this row says where they went.
CREATE TABLE retired_instances (
    instance_id   text        PRIMARY KEY,
    workflow_code text        NOT NULL,
    state         text        NOT NULL,
    ended_at      timestamptz,
    retired_at    timestamptz NOT NULL
);
