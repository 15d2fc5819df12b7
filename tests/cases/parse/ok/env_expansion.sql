-- The golden test sets SECRET=hunter2, KAFKA_BROKERS=10.0.0.1:9092, EMPTY= and nothing else.
CREATE CONNECTION pg TO POSTGRES (
    url = 'postgres://app:${SECRET}@${PG_HOST:-localhost}:${PG_PORT:-5432}/shop',
    password = '${SECRET}',
    application_name = '${APP_NAME:-}',           -- an empty default
    search_path = '${EMPTY:-public}',             -- empty counts as unset for :-
    note = 'it''s $5 and $${NOT_EXPANDED}',       -- '' is a quote, $${ a literal ${
    raw_key = '${KAFKA_BROKERS}'
);
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}');
CREATE PIPELINE p FROM pg INTO bus TOPIC '${TOPIC_PREFIX:-dev}.{schema}.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (tag = '${SECRET:-none}')
AS SELECT 'literal ${NOT_EXPANDED} inside SQL' AS s FROM t;
