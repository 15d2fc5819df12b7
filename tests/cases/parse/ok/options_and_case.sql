create connection k to kafka ('compression.type' = 'lz4', "Acks" = all, 'it''s' = 1);
create connection p to postgresql;
Create Pipeline opts From p Into k Topic 'opts'
  Format Json Envelope Debezium
  With (
    partitions = 3, replication = -1, ratio = 1.5, big = 2e6, tiny = -1.5E-3,
    json_schemas = TRUE, tombstones = False,
    snapshot = initial_only, Mode = Keep_Case, transactional = true, s = ''
  )
  as select * from t
;;;
CREATE PIPELINE no_options FROM p INTO k TOPIC 'x' FORMAT AVRO ENVELOPE NATIVE WITH () TABLES (t);
