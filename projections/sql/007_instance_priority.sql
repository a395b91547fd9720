-- An instance's priority among those waiting for worker slots (DolphinScheduler's
-- processInstancePriority; WorkflowStarted.priority), and the contract view's new columns:
-- added at the end of v1_instances, as the compatibility rule allows.
ALTER TABLE workflow_instances ADD COLUMN priority_code integer NOT NULL DEFAULT 2;
ALTER TABLE workflow_instances ADD COLUMN priority text NOT NULL DEFAULT 'MEDIUM';

CREATE OR REPLACE VIEW v1_instances AS
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
    i.dry_run,
    i.schedule_time,
    i.priority_code,
    i.priority
FROM workflow_instances i;

COMMENT ON COLUMN v1_instances.schedule_time IS
    'The fire time a scheduled run was started for (DolphinScheduler''s scheduleTime); null for a manual run.';
COMMENT ON COLUMN v1_instances.priority_code IS
    'DolphinScheduler''s Priority code: 0 HIGHEST, 1 HIGH, 2 MEDIUM, 3 LOW, 4 LOWEST; higher priority instances get worker slots first.';
COMMENT ON COLUMN v1_instances.priority IS
    'The name of priority_code (HIGHEST ... LOWEST).';
