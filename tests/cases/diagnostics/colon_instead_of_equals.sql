-- key: value as in YAML.
CREATE CONNECTION shop_pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1:5432/shop');
CREATE CONNECTION bus TO KAFKA (brokers: '127.0.0.1:9092');
