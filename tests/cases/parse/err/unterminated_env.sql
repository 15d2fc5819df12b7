CREATE CONNECTION pg TO POSTGRES (url = 'postgres://${PG_HOST:-localhost/shop');
