-- Unquoted names fold to lower case; quoted names keep their case, and "" is a quote.
CREATE CONNECTION "Main PG" TO POSTGRES (url = 'postgres://localhost/db');
CREATE CONNECTION Bus TO KAFKA (brokers = 'localhost:9092');
-- Keywords are not reserved: every clause is at a fixed place.
CREATE CONNECTION from TO KAFKA (to = 'x');
CREATE PIPELINE "Orders ""v2""" FROM "Main PG" INTO BUS TOPIC 'orders'
    KEY ("OrderID", Region, "key") FORMAT AVRO ENVELOPE NATIVE
AS SELECT "OrderID", region, "key" FROM "Sales"."Order Lines" WHERE "Weird;Name" > 0;
CREATE PIPELINE as FROM from INTO from TOPIC 't' FORMAT JSON ENVELOPE NATIVE
    TABLES (tables.with, "TABLES"."WITH", as);
