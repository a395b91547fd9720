-- Backfills (issue 10, DolphinScheduler's complement data): the backfill facts of the
-- schedules topic. backfills: one row per accepted request, its run settings and progress;
-- backfill_dates: one row per date of it, WAITING until its instance starts, RUNNING, then
-- the instance's end (SUCCESS, FAILURE or STOP; the first end counts); a date not started when
-- the backfill stops or a serial chain fails stays WAITING. backfill_rejections: refused
-- backfill commands. Contract views: v1_backfills, v1_backfill_dates.

CREATE TABLE backfills (
    backfill_id      text        PRIMARY KEY,
    workflow_code    text        NOT NULL,
    run_mode         text        NOT NULL,  -- SERIAL or PARALLEL
    execution_order  text        NOT NULL,  -- ASC or DESC
    parallelism      integer     NOT NULL,
    spec             jsonb       NOT NULL,  -- the request as given (range or list, crons, run settings)
    dates_total      integer     NOT NULL,
    state            text        NOT NULL,  -- RUNNING, SUCCESS, FAILURE or STOP
    requested_by     text        NOT NULL,
    command_id       text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
CREATE INDEX backfills_by_workflow ON backfills (workflow_code, requested_at);

CREATE TABLE backfill_dates (
    backfill_id  text        NOT NULL,
    date         timestamptz NOT NULL,
    position     integer     NOT NULL,  -- run order, from 0
    instance_id  text,
    state        text        NOT NULL,  -- WAITING, RUNNING, SUCCESS, FAILURE or STOP
    started_at   timestamptz,
    ended_at     timestamptz,
    PRIMARY KEY (backfill_id, date)
);
CREATE INDEX backfill_dates_by_instance ON backfill_dates (instance_id);

CREATE TABLE backfill_rejections (
    command_id   text        PRIMARY KEY,
    backfill_id  text        NOT NULL,
    command_type text        NOT NULL,
    reason       text        NOT NULL,
    message      text        NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX backfill_rejections_by_backfill ON backfill_rejections (backfill_id, at);

CREATE VIEW v1_backfills AS
SELECT
    b.backfill_id,
    b.workflow_code,
    b.run_mode,
    b.execution_order,
    b.parallelism,
    b.state,
    b.dates_total,
    (SELECT count(*) FROM backfill_dates d WHERE d.backfill_id = b.backfill_id
        AND d.state <> 'WAITING')::bigint AS dates_started,
    (SELECT count(*) FROM backfill_dates d WHERE d.backfill_id = b.backfill_id
        AND d.state = 'SUCCESS')::bigint AS dates_succeeded,
    (SELECT count(*) FROM backfill_dates d WHERE d.backfill_id = b.backfill_id
        AND d.state IN ('FAILURE', 'STOP'))::bigint AS dates_failed,
    b.requested_by,
    b.requested_at,
    b.updated_at,
    b.finished_at,
    b.spec
FROM backfills b;

CREATE VIEW v1_backfill_dates AS
SELECT
    d.backfill_id,
    d.date,
    d.position,
    d.state,
    d.instance_id,
    i.state AS instance_state,
    d.started_at,
    d.ended_at
FROM backfill_dates d
LEFT JOIN workflow_instances i ON i.instance_id = d.instance_id;
