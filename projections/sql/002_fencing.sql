-- Owner epochs per events partition (from PartitionTakenOver): an instance event whose epoch
-- is below its partition's epoch was written by a master that had lost the partition. It is
-- archived with fenced = true and not applied, exactly as masters ignore it when folding.
CREATE TABLE partition_owners (
    partition      integer     PRIMARY KEY,
    epoch          bigint      NOT NULL,
    owner          text        NOT NULL,
    previous_owner text        NOT NULL,
    taken_over_at  timestamptz NOT NULL
);

ALTER TABLE event_archive ADD COLUMN fenced boolean NOT NULL DEFAULT false;
