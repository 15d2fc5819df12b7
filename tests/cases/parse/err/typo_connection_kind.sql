CREATE CONNECTION pg TO POSTGRSE (url = 'postgres://localhost/shop');
