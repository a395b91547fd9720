-- The SQL contract for people and BI tools: versioned views over the read models, each view
-- and column described in the database (COMMENT ON) with the same text as docs/READ_MODELS.md
-- (a test compares them). Compatibility rule: a v1_* view never loses, renames or retypes a
-- column and never changes what a column means; a later migration may only add columns at
-- the end (CREATE OR REPLACE VIEW) or create v2_* views next to the v1_* ones.
-- Schedules and their fires are not in the contract yet: they do not exist in tideflow.

CREATE VIEW v1_instances AS
SELECT
    i.instance_id,
    i.workflow_code,
    i.workflow_version,
    i.state_code,
    i.state,
    i.state_code IN (3, 5, 6, 7) AS finished,
    i.started_at,
    i.ended_at,
    EXTRACT(EPOCH FROM i.ended_at - i.started_at)::double precision AS duration_s,
    i.updated_at,
    i.failure_reason,
    i.requested_by,
    i.params,
    i.dry_run
FROM workflow_instances i;

COMMENT ON VIEW v1_instances IS
    'One row per workflow instance (DolphinScheduler''s t_ds_process_instance), in its latest state.';
COMMENT ON COLUMN v1_instances.instance_id IS
    'The instance''s id, the key of its commands and events.';
COMMENT ON COLUMN v1_instances.workflow_code IS
    'Code of the workflow the instance runs.';
COMMENT ON COLUMN v1_instances.workflow_version IS
    'Version of the workflow definition the instance runs.';
COMMENT ON COLUMN v1_instances.state_code IS
    'DolphinScheduler''s WorkflowExecutionStatus code: 0 SUBMITTED_SUCCESS, 1 RUNNING_EXECUTION, 2 READY_PAUSE, 3 PAUSE, 4 READY_STOP, 5 STOP, 6 FAILURE, 7 SUCCESS.';
COMMENT ON COLUMN v1_instances.state IS
    'The name of state_code (RUNNING_EXECUTION, SUCCESS, FAILURE, ...).';
COMMENT ON COLUMN v1_instances.finished IS
    'True in a final state (PAUSE, STOP, FAILURE, SUCCESS); a resume or rerun can make it false again.';
COMMENT ON COLUMN v1_instances.started_at IS
    'When the instance started; a rerun resets it.';
COMMENT ON COLUMN v1_instances.ended_at IS
    'When the instance reached its final state; null while it is not finished.';
COMMENT ON COLUMN v1_instances.duration_s IS
    'ended_at - started_at in seconds; null while the instance is not finished.';
COMMENT ON COLUMN v1_instances.updated_at IS
    'Time of the latest event of the instance.';
COMMENT ON COLUMN v1_instances.failure_reason IS
    'Why the instance failed (e.g. the task that failed); null or empty otherwise.';
COMMENT ON COLUMN v1_instances.requested_by IS
    'Who started the instance (the requester named in its StartWorkflow command).';
COMMENT ON COLUMN v1_instances.params IS
    'Startup parameters, a JSON object of name to string value.';
COMMENT ON COLUMN v1_instances.dry_run IS
    'True for a dry run (DolphinScheduler''s dryRun): workers reported SUCCESS without running anything.';

CREATE VIEW v1_task_attempts AS
SELECT
    t.task_instance_id,
    t.instance_id,
    i.workflow_code,
    t.task_code,
    t.attempt,
    t.valid,
    t.state_code,
    t.state,
    t.worker_id,
    t.worker_group,
    t.dispatched_at,
    t.started_at,
    t.ended_at,
    EXTRACT(EPOCH FROM t.started_at - t.dispatched_at)::double precision AS queued_s,
    EXTRACT(EPOCH FROM t.ended_at - t.started_at)::double precision AS duration_s,
    t.exit_code,
    t.reason,
    t.retry_at,
    t.output
FROM task_instances t
LEFT JOIN workflow_instances i ON i.instance_id = t.instance_id;

COMMENT ON VIEW v1_task_attempts IS
    'One row per attempt of a task (DolphinScheduler''s t_ds_task_instance): retries, failovers and reruns each add a row.';
COMMENT ON COLUMN v1_task_attempts.task_instance_id IS
    'The attempt''s id: instance_id/task_code/attempt.';
COMMENT ON COLUMN v1_task_attempts.instance_id IS
    'The workflow instance the attempt belongs to (v1_instances.instance_id).';
COMMENT ON COLUMN v1_task_attempts.workflow_code IS
    'Code of the instance''s workflow.';
COMMENT ON COLUMN v1_task_attempts.task_code IS
    'Code of the task in the workflow definition.';
COMMENT ON COLUMN v1_task_attempts.attempt IS
    'Attempt number of the task within the instance, from 1; it keeps counting across retries, failovers and reruns.';
COMMENT ON COLUMN v1_task_attempts.valid IS
    'True only for the latest attempt of each task of the instance (DolphinScheduler''s flag YES).';
COMMENT ON COLUMN v1_task_attempts.state_code IS
    'DolphinScheduler''s TaskExecutionStatus code: 0 SUBMITTED_SUCCESS, 1 RUNNING_EXECUTION, 3 PAUSE, 6 FAILURE, 7 SUCCESS, 8 NEED_FAULT_TOLERANCE, 9 KILL, 12 DELAY_EXECUTION, 13 FORCED_SUCCESS, 17 DISPATCH.';
COMMENT ON COLUMN v1_task_attempts.state IS
    'The name of state_code (DISPATCH, RUNNING_EXECUTION, SUCCESS, FAILURE, KILL, ...).';
COMMENT ON COLUMN v1_task_attempts.worker_id IS
    'The worker the attempt was dispatched to (v1_workers.worker_id).';
COMMENT ON COLUMN v1_task_attempts.worker_group IS
    'The worker group the attempt was dispatched to.';
COMMENT ON COLUMN v1_task_attempts.dispatched_at IS
    'When the master dispatched the attempt to its worker.';
COMMENT ON COLUMN v1_task_attempts.started_at IS
    'When the worker reported the attempt started; null if it never did.';
COMMENT ON COLUMN v1_task_attempts.ended_at IS
    'When the attempt ended (succeeded, failed, was killed or failed over); null while it runs.';
COMMENT ON COLUMN v1_task_attempts.queued_s IS
    'started_at - dispatched_at in seconds: the wait between dispatch and start.';
COMMENT ON COLUMN v1_task_attempts.duration_s IS
    'ended_at - started_at in seconds: the run time; null until the attempt has started and ended.';
COMMENT ON COLUMN v1_task_attempts.exit_code IS
    'Exit code of the task''s process, when the worker reported one.';
COMMENT ON COLUMN v1_task_attempts.reason IS
    'Why the attempt failed, was killed or failed over; null otherwise.';
COMMENT ON COLUMN v1_task_attempts.retry_at IS
    'When the next attempt is due after a failure with retries left; null otherwise.';
COMMENT ON COLUMN v1_task_attempts.output IS
    'The last 8 KiB of the attempt''s output, as the worker reported it.';

CREATE VIEW v1_workers AS
SELECT
    w.worker_id,
    w.worker_group,
    w.host,
    w.pid,
    w.version,
    w.started_at,
    w.last_heartbeat_at,
    EXTRACT(EPOCH FROM now() - w.last_heartbeat_at)::double precision AS heartbeat_age_s,
    w.slots_total,
    w.slots_free,
    w.slots_total - w.slots_free AS slots_busy,
    CASE WHEN w.slots_total > 0
        THEN (w.slots_total - w.slots_free)::double precision / w.slots_total
    END AS utilisation,
    w.cpu_percent,
    w.memory_percent,
    w.load_average
FROM workers w;

COMMENT ON VIEW v1_workers IS
    'One row per worker id, as its newest heartbeat describes it; a worker that stopped keeps its last row.';
COMMENT ON COLUMN v1_workers.worker_id IS
    'The worker''s id (TIDEFLOW_WORKER_ID, by default host-pid).';
COMMENT ON COLUMN v1_workers.worker_group IS
    'The worker group it serves (DolphinScheduler''s worker group).';
COMMENT ON COLUMN v1_workers.host IS
    'Host name of the worker''s machine.';
COMMENT ON COLUMN v1_workers.pid IS
    'Process id of the worker on its host.';
COMMENT ON COLUMN v1_workers.version IS
    'tideflow version the worker runs.';
COMMENT ON COLUMN v1_workers.started_at IS
    'When the worker process started.';
COMMENT ON COLUMN v1_workers.last_heartbeat_at IS
    'Time of the newest heartbeat.';
COMMENT ON COLUMN v1_workers.heartbeat_age_s IS
    'Seconds since the newest heartbeat, at query time; masters treat a worker silent past TIDEFLOW_WORKER_TIMEOUT_S (10 s by default) as lost.';
COMMENT ON COLUMN v1_workers.slots_total IS
    'Task slots the worker offers; 0 while it is stopping.';
COMMENT ON COLUMN v1_workers.slots_free IS
    'Slots free at the newest heartbeat.';
COMMENT ON COLUMN v1_workers.slots_busy IS
    'slots_total - slots_free: slots running or holding an attempt at the newest heartbeat.';
COMMENT ON COLUMN v1_workers.utilisation IS
    'slots_busy / slots_total, from 0 to 1; null when the worker offers no slots.';
COMMENT ON COLUMN v1_workers.cpu_percent IS
    'CPU use of the worker''s host in percent, at the newest heartbeat.';
COMMENT ON COLUMN v1_workers.memory_percent IS
    'Memory use of the worker''s host in percent, at the newest heartbeat.';
COMMENT ON COLUMN v1_workers.load_average IS
    'One-minute load average of the worker''s host, at the newest heartbeat.';

CREATE VIEW v1_command_rejections AS
SELECT
    r.command_id,
    r.instance_id,
    i.workflow_code,
    r.command_type,
    r.reason,
    r.message,
    r.at
FROM command_rejections r
LEFT JOIN workflow_instances i ON i.instance_id = r.instance_id;

COMMENT ON VIEW v1_command_rejections IS
    'One row per command a master refused (a CommandRejected event), e.g. a pause of a finished instance.';
COMMENT ON COLUMN v1_command_rejections.command_id IS
    'Id of the refused command.';
COMMENT ON COLUMN v1_command_rejections.instance_id IS
    'The instance the command was addressed to; it may not exist (reason NOT_FOUND).';
COMMENT ON COLUMN v1_command_rejections.workflow_code IS
    'Code of that instance''s workflow; null when the instance does not exist.';
COMMENT ON COLUMN v1_command_rejections.command_type IS
    'The command''s record name (PauseWorkflow, StopWorkflow, ReportTaskFinished, ...).';
COMMENT ON COLUMN v1_command_rejections.reason IS
    'Why it was refused: INVALID_STATE, NOT_FOUND, STALE_ATTEMPT, INVALID_PARAMS, ...';
COMMENT ON COLUMN v1_command_rejections.message IS
    'The refusal in words (e.g. expected RUNNING_EXECUTION, found SUCCESS).';
COMMENT ON COLUMN v1_command_rejections.at IS
    'When the master refused the command.';

CREATE VIEW v1_event_archive AS
SELECT
    e.topic,
    e.partition AS log_partition,
    e."offset" AS log_offset,
    e.key,
    e.event_type,
    e.instance_id,
    e.epoch,
    e.fenced,
    e.at,
    e.payload
FROM event_archive e;

COMMENT ON VIEW v1_event_archive IS
    'Every record the projector read from the events and definitions topics (heartbeats excepted), append-only, in log order per topic partition: the audit trail.';
COMMENT ON COLUMN v1_event_archive.topic IS
    'Topic name without the deployment''s prefix: events or definitions.';
COMMENT ON COLUMN v1_event_archive.log_partition IS
    'Kafka partition of the record.';
COMMENT ON COLUMN v1_event_archive.log_offset IS
    'Kafka offset of the record in its partition; log order within an instance is (log_partition, log_offset).';
COMMENT ON COLUMN v1_event_archive.key IS
    'The record''s Kafka key: the instance id for events, the workflow code for definitions.';
COMMENT ON COLUMN v1_event_archive.event_type IS
    'The record''s name (WorkflowStarted, TaskSucceeded, CommandRejected, WorkflowDefinitionRegistered, ...).';
COMMENT ON COLUMN v1_event_archive.instance_id IS
    'The instance the event is about; null for records about no instance.';
COMMENT ON COLUMN v1_event_archive.epoch IS
    'Owner epoch of the master that wrote the event; null for records that carry none (definitions).';
COMMENT ON COLUMN v1_event_archive.fenced IS
    'True for an event written by a master that had lost its partition: archived, never applied.';
COMMENT ON COLUMN v1_event_archive.at IS
    'The event''s own time (its at field).';
COMMENT ON COLUMN v1_event_archive.payload IS
    'The whole record as JSON: enum names, ISO 8601 datetimes.';
