-- PG_URL is not set in the golden tests.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL}');
