CREATE CONNECTION pg TO POSTGRES (url = "postgres://localhost/shop");
