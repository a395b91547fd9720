-- Seals of the retained logs (projections/seals.py): per topic partition, a SHA-256 hash chain
-- over every record (offset, key, value bytes) up to next_offset. `tideflow audit verify`
-- recomputes the chain from the log and compares it with every seal.
CREATE TABLE log_seals (
    topic       text        NOT NULL,   -- without the deployment's prefix: events, schedules
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,   -- the chain covers offsets [0, next_offset)
    records     bigint      NOT NULL,   -- records read into the chain (offsets may have gaps)
    digest      text        NOT NULL,   -- hex SHA-256 chain value after the last record
    sealed_at   timestamptz NOT NULL,
    PRIMARY KEY (topic, partition, next_offset)
);
