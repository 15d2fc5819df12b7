CREATE CONNECTION bus TO KAFKA WITH (brokers = 'localhost:9092');
