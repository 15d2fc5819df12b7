CREATE CONNECTION "Main PG TO POSTGRES (url = 'postgres://localhost/shop');
