-- POSTGRES misspelled.
CREATE CONNECTION shop_pg TO POSTGERS (url = 'postgres://postgres@127.0.0.1:5432/shop');
