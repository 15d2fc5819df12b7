CREATE CONNECTION bus TO KAFKA (brokers = 'localhost:9092' schema_registry = 'http://localhost:8081');
