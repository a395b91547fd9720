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

-- The contract views' descriptions (docs/READ_MODELS.md).
COMMENT ON VIEW v1_backfills IS
    'One row per accepted backfill (DolphinScheduler''s complement data): its run settings, state and progress.';
COMMENT ON COLUMN v1_backfills.backfill_id IS
    'The backfill''s id, chosen by the request or a UUID.';
COMMENT ON COLUMN v1_backfills.workflow_code IS
    'Code of the workflow each date runs (its latest version when the date starts).';
COMMENT ON COLUMN v1_backfills.run_mode IS
    'SERIAL (the next date starts after SUCCESS; a failure ends the chain) or PARALLEL.';
COMMENT ON COLUMN v1_backfills.execution_order IS
    'ASC or DESC: the order the dates run in.';
COMMENT ON COLUMN v1_backfills.parallelism IS
    'PARALLEL: how many instances run at once (SERIAL: 1).';
COMMENT ON COLUMN v1_backfills.state IS
    'RUNNING, SUCCESS (every date succeeded), FAILURE (a date did not succeed) or STOP (stopped: no date starts any more).';
COMMENT ON COLUMN v1_backfills.dates_total IS
    'How many dates the request expanded to.';
COMMENT ON COLUMN v1_backfills.dates_started IS
    'Dates whose instance was started.';
COMMENT ON COLUMN v1_backfills.dates_succeeded IS
    'Dates whose instance ended SUCCESS.';
COMMENT ON COLUMN v1_backfills.dates_failed IS
    'Dates whose instance ended FAILURE or STOP.';
COMMENT ON COLUMN v1_backfills.requested_by IS
    'Who asked for it, as the request said.';
COMMENT ON COLUMN v1_backfills.requested_at IS
    'When the scheduler accepted the request.';
COMMENT ON COLUMN v1_backfills.updated_at IS
    'When a date last started, or the backfill ended.';
COMMENT ON COLUMN v1_backfills.finished_at IS
    'When it ended (SUCCESS, FAILURE or STOP); null while RUNNING.';
COMMENT ON COLUMN v1_backfills.spec IS
    'The request as accepted: range or dates, crons, order, mode, run settings.';
COMMENT ON VIEW v1_backfill_dates IS
    'One row per date of a backfill, in run order, with the one instance it started.';
COMMENT ON COLUMN v1_backfill_dates.backfill_id IS
    'The backfill.';
COMMENT ON COLUMN v1_backfill_dates.date IS
    'The date: the instance''s schedule time.';
COMMENT ON COLUMN v1_backfill_dates.position IS
    'Its place in the run order, from 0.';
COMMENT ON COLUMN v1_backfill_dates.state IS
    'WAITING (not started), RUNNING, then how its instance ended: SUCCESS, FAILURE or STOP (the first end counts).';
COMMENT ON COLUMN v1_backfill_dates.instance_id IS
    'The instance it started; derived from (request, date), so a date has one. Null while WAITING.';
COMMENT ON COLUMN v1_backfill_dates.instance_state IS
    'The instance''s current state name (a rerun may have changed it since).';
COMMENT ON COLUMN v1_backfill_dates.started_at IS
    'When the scheduler started its instance.';
COMMENT ON COLUMN v1_backfill_dates.ended_at IS
    'When the scheduler learned its instance ended.';
