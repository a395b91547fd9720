-- DolphinScheduler's dry_run column of an instance (t_ds_process_instance.dry_run): its
-- workers reported SUCCESS without running anything (WorkflowStarted.dry_run).
ALTER TABLE workflow_instances ADD COLUMN dry_run boolean NOT NULL DEFAULT false;
