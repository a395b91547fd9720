-- Keyset pagination: every list orders by a unique key and continues after a cursor with a
-- row-value comparison, so each order has an index that ends with the tie-breaking id
-- (projections/pages.py). The filters of the instance list each lead an index.
CREATE INDEX workflow_instances_newest ON workflow_instances (started_at DESC, instance_id DESC);
DROP INDEX workflow_instances_by_workflow;
CREATE INDEX workflow_instances_by_workflow
    ON workflow_instances (workflow_code, started_at DESC, instance_id DESC);
DROP INDEX workflow_instances_by_state;
CREATE INDEX workflow_instances_by_state
    ON workflow_instances (state_code, started_at DESC, instance_id DESC);
CREATE INDEX workflow_instances_by_requester
    ON workflow_instances (requested_by, started_at DESC, instance_id DESC);
CREATE INDEX task_instances_by_worker ON task_instances (worker_id, instance_id);
CREATE INDEX command_rejections_newest ON command_rejections (at DESC, command_id DESC);
