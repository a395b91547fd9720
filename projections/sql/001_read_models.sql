-- Read models of tideflow, rebuilt from the log by the projector (projections/handlers.py).
-- Table names are unqualified: the schema comes from search_path, so replay builds a fresh
-- schema with this same file. State codes and names are DolphinScheduler's
-- (streams/core/states.py); every timestamp is an event's `at`, never a clock reading.

CREATE TABLE workflow_definitions (
    code          text        NOT NULL,
    version       integer     NOT NULL,
    description   text        NOT NULL DEFAULT '',
    definition    jsonb       NOT NULL,            -- streams.core.definition.workflow_to_dict
    content_hash  text        NOT NULL,
    registered_at timestamptz NOT NULL,
    registered_by text        NOT NULL DEFAULT '',
    PRIMARY KEY (code, version)
);
CREATE INDEX workflow_definitions_hash ON workflow_definitions (code, content_hash);

CREATE TABLE workflow_instances (
    instance_id      text        PRIMARY KEY,
    workflow_code    text        NOT NULL,
    workflow_version integer     NOT NULL,
    state_code       integer     NOT NULL,         -- WorkflowState
    state            text        NOT NULL,
    started_at       timestamptz,
    ended_at         timestamptz,
    updated_at       timestamptz,                  -- `at` of the latest event of the instance
    failure_reason   text,
    requested_by     text        NOT NULL DEFAULT '',
    params           jsonb       NOT NULL DEFAULT '{}',
    last_offset      bigint                        -- events-topic offset of that latest event
);
CREATE INDEX workflow_instances_by_workflow ON workflow_instances (workflow_code, started_at DESC);
CREATE INDEX workflow_instances_by_state ON workflow_instances (state_code, started_at DESC);

-- One row per attempt (DolphinScheduler's t_ds_task_instance); `valid` is its flag=YES:
-- true only for the latest attempt of each task.
CREATE TABLE task_instances (
    task_instance_id text        PRIMARY KEY,      -- instance_id/task_code/attempt
    instance_id      text        NOT NULL,
    task_code        text        NOT NULL,
    attempt          integer     NOT NULL,
    state_code       integer     NOT NULL,         -- TaskState
    state            text        NOT NULL,
    worker_id        text,
    worker_group     text,
    dispatched_at    timestamptz,
    started_at       timestamptz,
    ended_at         timestamptz,
    exit_code        integer,
    output           text,
    reason           text,
    retry_at         timestamptz,
    valid            boolean     NOT NULL DEFAULT true
);
CREATE INDEX task_instances_by_instance ON task_instances (instance_id, task_code, attempt);
CREATE UNIQUE INDEX task_instances_one_valid ON task_instances (instance_id, task_code)
    WHERE valid;

CREATE TABLE command_rejections (
    command_id   text        PRIMARY KEY,
    instance_id  text        NOT NULL,
    command_type text        NOT NULL,
    reason       text        NOT NULL,             -- streams.core.rejections.Reason
    message      text        NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX command_rejections_by_instance ON command_rejections (instance_id, at);

CREATE TABLE workers (
    worker_id         text             PRIMARY KEY,
    worker_group      text             NOT NULL,
    host              text             NOT NULL,
    pid               integer          NOT NULL,
    slots_total       integer          NOT NULL,
    slots_free        integer          NOT NULL,
    cpu_percent       double precision NOT NULL,
    memory_percent    double precision NOT NULL,
    load_average      double precision NOT NULL,
    version           text             NOT NULL,
    started_at        timestamptz      NOT NULL,
    last_heartbeat_at timestamptz      NOT NULL    -- the newest heartbeat's `at`
);

-- Append-only audit of every projected record except heartbeats. `topic` is the topic name
-- WITHOUT the deployment's prefix ("events", "definitions"), so an archive rebuilt from
-- differently-prefixed topics compares equal.
CREATE TABLE event_archive (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         text,
    event_type  text        NOT NULL,
    instance_id text,
    epoch       bigint,
    at          timestamptz NOT NULL,
    payload     jsonb       NOT NULL,              -- the record: enum names, ISO datetimes
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX event_archive_by_instance ON event_archive (instance_id, partition, "offset");

-- The tracking record: the next offset to project, written in the same transaction as the
-- rows it covers. `topic` is the real (prefixed) topic name.
CREATE TABLE projector_checkpoints (
    consumer    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);
