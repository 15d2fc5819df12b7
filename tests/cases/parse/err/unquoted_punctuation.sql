CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders' FORMAT AVRO ENVELOPE DEBEZIUM
    WITH (subject_strategy = io.confluent.TopicNameStrategy)
AS SELECT id FROM public.orders;
