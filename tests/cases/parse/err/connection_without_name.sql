CREATE CONNECTION TO KAFKA (brokers = 'localhost:9092');
