CREATE CONNECTION pg TO POSTGRES (url = 'postgres://localhost/shop')

CREATE CONNECTION bus TO KAFKA (brokers = 'localhost:9092');
