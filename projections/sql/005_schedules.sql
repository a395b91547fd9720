-- Schedules (issue 10): the schedules topic's read models and their contract views.
-- schedules: one row per schedule, its definition and release state (DolphinScheduler's
-- t_ds_schedules); schedule_fires: one row per fire time fired (a fire time fired twice, by a
-- restarted scheduler or two during a takeover, is one row: the first wins, and it started
-- one instance); schedule_rejections: refused schedule commands.

-- DolphinScheduler's schedule_time of an instance (t_ds_process_instance.schedule_time): the
-- fire time a scheduled run was started for (WorkflowStarted.schedule_time); null: manual.
ALTER TABLE workflow_instances ADD COLUMN schedule_time timestamptz;

CREATE TABLE schedules (
    schedule_id        text             PRIMARY KEY,
    workflow_code      text             NOT NULL,
    cron               text             NOT NULL,
    timezone           text             NOT NULL,
    start_time         timestamptz,
    end_time           timestamptz,
    misfire            text             NOT NULL,  -- ALL or LATEST
    catch_up_window_s  double precision NOT NULL,
    failure_strategy   text             NOT NULL,
    workflow_priority  text             NOT NULL,
    worker_group       text             NOT NULL,
    warning_type       text             NOT NULL,
    warning_group_id   bigint           NOT NULL,
    params             jsonb            NOT NULL,
    release_state      text             NOT NULL,  -- ONLINE, OFFLINE or DELETED
    online_since       timestamptz,
    created_by         text             NOT NULL,
    created_at         timestamptz      NOT NULL,
    updated_at         timestamptz      NOT NULL,
    last_fire_time     timestamptz,
    next_fire_time     timestamptz,
    fires              bigint           NOT NULL DEFAULT 0
);
CREATE INDEX schedules_by_workflow ON schedules (workflow_code);

CREATE TABLE schedule_fires (
    schedule_id    text             NOT NULL,
    fire_time      timestamptz      NOT NULL,
    fired_at       timestamptz      NOT NULL,
    instance_id    text             NOT NULL,
    workflow_code  text             NOT NULL,
    PRIMARY KEY (schedule_id, fire_time)
);
CREATE INDEX schedule_fires_by_instance ON schedule_fires (instance_id);

CREATE TABLE schedule_rejections (
    command_id   text        PRIMARY KEY,
    schedule_id  text        NOT NULL,
    command_type text        NOT NULL,
    reason       text        NOT NULL,
    message      text        NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX schedule_rejections_by_schedule ON schedule_rejections (schedule_id, at);

CREATE VIEW v1_schedules AS
SELECT
    s.schedule_id,
    s.workflow_code,
    s.cron,
    s.timezone,
    s.start_time,
    s.end_time,
    s.release_state,
    s.online_since,
    s.misfire,
    s.catch_up_window_s,
    s.failure_strategy,
    s.workflow_priority,
    s.worker_group,
    s.warning_type,
    s.warning_group_id,
    s.params,
    s.fires,
    s.last_fire_time,
    s.next_fire_time,
    s.created_by,
    s.created_at,
    s.updated_at
FROM schedules s;

COMMENT ON VIEW v1_schedules IS
    'One row per schedule (DolphinScheduler''s t_ds_schedules): its cron, release state, run settings and fires.';
COMMENT ON COLUMN v1_schedules.schedule_id IS
    'The schedule''s id, the key of its commands and events.';
COMMENT ON COLUMN v1_schedules.workflow_code IS
    'Code of the workflow each fire starts (its latest version at the fire).';
COMMENT ON COLUMN v1_schedules.cron IS
    'The cron expression as written: Quartz (6-7 fields, seconds first) or Unix (5 fields).';
COMMENT ON COLUMN v1_schedules.timezone IS
    'IANA timezone the cron''s wall-clock times are read in.';
COMMENT ON COLUMN v1_schedules.start_time IS
    'Nothing fires before it; null: no start bound.';
COMMENT ON COLUMN v1_schedules.end_time IS
    'Nothing fires after it; null: no end bound.';
COMMENT ON COLUMN v1_schedules.release_state IS
    'ONLINE (fires), OFFLINE (does not) or DELETED.';
COMMENT ON COLUMN v1_schedules.online_since IS
    'When it was last brought online; fire times before it are never back-filled.';
COMMENT ON COLUMN v1_schedules.misfire IS
    'After downtime: ALL fires every missed time in the catch-up window, oldest first; LATEST only the newest.';
COMMENT ON COLUMN v1_schedules.catch_up_window_s IS
    'Missed fire times older than this many seconds are not fired after downtime.';
COMMENT ON COLUMN v1_schedules.failure_strategy IS
    'Failure strategy of the instances it starts: CONTINUE or END.';
COMMENT ON COLUMN v1_schedules.workflow_priority IS
    'DolphinScheduler''s processInstancePriority (HIGHEST ... LOWEST), recorded for the instances it starts.';
COMMENT ON COLUMN v1_schedules.worker_group IS
    'Worker group for the tasks of its instances that are in the default group.';
COMMENT ON COLUMN v1_schedules.warning_type IS
    'DolphinScheduler''s warning type: NONE, SUCCESS, FAILURE, ALL or GLOBAL (recorded; alerts are not built yet).';
COMMENT ON COLUMN v1_schedules.warning_group_id IS
    'Alert group id (recorded; alerts are not built yet).';
COMMENT ON COLUMN v1_schedules.params IS
    'Startup parameters of the instances it starts (JSON object of strings).';
COMMENT ON COLUMN v1_schedules.fires IS
    'Fire times fired so far (each one started one instance).';
COMMENT ON COLUMN v1_schedules.last_fire_time IS
    'The latest fire time fired; null before the first fire.';
COMMENT ON COLUMN v1_schedules.next_fire_time IS
    'The fire time the scheduler fires next; null when offline, deleted or past its end. In the past: the scheduler is behind.';
COMMENT ON COLUMN v1_schedules.created_by IS
    'Who created it, as the request said.';
COMMENT ON COLUMN v1_schedules.created_at IS
    'When the scheduler accepted its creation.';
COMMENT ON COLUMN v1_schedules.updated_at IS
    'When a command last changed it.';

CREATE VIEW v1_schedule_fires AS
SELECT
    f.schedule_id,
    f.fire_time,
    f.fired_at,
    EXTRACT(EPOCH FROM f.fired_at - f.fire_time)::double precision AS lateness_s,
    f.instance_id,
    f.workflow_code,
    i.state_code,
    i.state
FROM schedule_fires f
LEFT JOIN workflow_instances i ON i.instance_id = f.instance_id;

COMMENT ON VIEW v1_schedule_fires IS
    'One row per fire time a schedule fired, with the one instance it started.';
COMMENT ON COLUMN v1_schedule_fires.schedule_id IS
    'The schedule that fired.';
COMMENT ON COLUMN v1_schedule_fires.fire_time IS
    'The scheduled fire time (the instance''s schedule time), not when it fired.';
COMMENT ON COLUMN v1_schedule_fires.fired_at IS
    'When the scheduler fired it (the first time, if it was fired again after a restart).';
COMMENT ON COLUMN v1_schedule_fires.lateness_s IS
    'fired_at - fire_time in seconds: the cadence''s delay, or how late a missed time was caught up.';
COMMENT ON COLUMN v1_schedule_fires.instance_id IS
    'The instance it started; derived from (schedule, fire time), so a fire time has one.';
COMMENT ON COLUMN v1_schedule_fires.workflow_code IS
    'Code of the workflow it started.';
COMMENT ON COLUMN v1_schedule_fires.state_code IS
    'The instance''s WorkflowExecutionStatus code; null until a master has started it.';
COMMENT ON COLUMN v1_schedule_fires.state IS
    'The name of state_code.';
